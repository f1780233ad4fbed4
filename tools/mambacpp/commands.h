#pragma once

#include <CLI/CLI.hpp>

namespace mambacpp::cli {

// Each subcommand adds itself to the application and sets its own callback.
// A callback throws mambacpp::Error on bad input; main() prints it as one line.
void add_bench_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_logits_command(CLI::App& app);
void add_perplexity_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_train_command(CLI::App& app);

}  // namespace mambacpp::cli
