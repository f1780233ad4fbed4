#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "mambacpp/model.h"

namespace mambacpp::cli {

// Flag value checks whose messages name the bound and the value (CLI11's own range
// checks print the whole double range).
extern const CLI::Validator kNonNegative;
extern const CLI::Validator kPositive;

// Parses "1,2,3" (commas and/or spaces, optionally inside [ ] as `tokenize` prints it)
// into token ids; throws Error naming `flag` on an
// entry that is not a non-negative integer below 2^31.
std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag);

// Checks that every id names a real token of the model: below its vocab_size, so never a
// padding row of the embedding. Throws Error naming `flag`, the id and `model_dir`.
void check_token_ids(const std::vector<int32_t>& ids, const ModelConfig& config,
                     const std::string& flag, const std::string& model_dir);

// The same for a flag value that may also be "@FILE": ids read from that file, for prompts
// too long for one command-line argument.
std::vector<int32_t> parse_ids_argument(const std::string& text, const std::string& flag);

// Adds -t/--threads (default: the number of online CPUs).
void add_threads_option(CLI::App& cmd, int& threads);

// Adds --dtype (as-stored, f32, bf16, f16): the dtype weight matrices are used in.
void add_dtype_option(CLI::App& cmd, std::string& dtype);
// The load options for a --dtype value.
LoadOptions load_options_for(const std::string& dtype);

// The directory of the model this project ships (trained on Tiny Shakespeare), used when
// a command gets no -m: models/shakespeare-mamba2 next to the program's build or install
// folder, else in the source tree the program was built from. Throws Error listing the
// places it looked when none has a config.json.
std::string shipped_model_dir();

// Reads a whole file; throws Error naming `flag` and the path when it cannot.
std::string read_text_file(const std::string& path, const std::string& flag);

}  // namespace mambacpp::cli
