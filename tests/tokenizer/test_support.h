#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mambacpp/tokenizer.h"

namespace mambacpp::tokenizer_test {

std::filesystem::path data_dir();            // tests/data
std::filesystem::path tokenizer_json_path();  // tests/data/tokenizer/tokenizer.json

// The GPT-NeoX-20B tokenizer, loaded once for all tests.
const Tokenizer& neox_tokenizer();

std::string read_file(const std::filesystem::path& path);
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path);

// Lowercase hex SHA-256 (FIPS 180-4) of `bytes`.
std::string sha256_hex(std::string_view bytes);

// SHA-256 of the ids written as unsigned 32-bit little-endian integers.
std::string sha256_of_ids(std::span<const int32_t> ids);

// Whole-text NFC computed by utf8proc.
std::string nfc(std::string_view text);

// Decodes `ids` one id at a time with StreamDecoder and concatenates its output.
std::string stream_decode(const Tokenizer& tokenizer, std::span<const int32_t> ids,
                          bool skip_special_tokens = false);

}  // namespace mambacpp::tokenizer_test
