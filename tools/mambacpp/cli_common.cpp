#include "cli_common.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "mambacpp/error.h"

namespace mambacpp::cli {

namespace {

// Returns a validator that accepts numbers for which `accept` holds.
CLI::Validator number_check(bool (*accept)(double), const std::string& requirement) {
  return CLI::Validator(
      [accept, requirement](std::string& text) -> std::string {
        char* end = nullptr;
        double value = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "must be a number, got '" + text + "'";
        if (!accept(value)) return "must be " + requirement + ", got " + text;
        return {};
      },
      requirement);
}

}  // namespace

const CLI::Validator kNonNegative = number_check([](double v) { return v >= 0; }, "0 or more");
const CLI::Validator kPositive = number_check([](double v) { return v > 0; }, "more than 0");

std::vector<int32_t> parse_ids_argument(const std::string& text, const std::string& flag) {
  if (!text.empty() && text[0] == '@') return parse_ids(read_text_file(text.substr(1), flag), flag);
  return parse_ids(text, flag);
}

std::vector<int32_t> parse_ids(const std::string& raw_text, const std::string& flag) {
  // A JSON array, as `tokenize` prints it, reads like the plain list inside its brackets.
  std::string text = raw_text;
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[' && text[last] == ']')
    text = text.substr(first + 1, last - first - 1);

  std::vector<int32_t> ids;
  std::string token;
  auto flush = [&] {
    if (token.empty()) return;
    bool digits = token.size() <= 10 && token.find_first_not_of("0123456789") == std::string::npos;
    long long value = digits ? std::stoll(token) : -1;
    if (!digits || value > INT32_MAX)
      throw Error(flag + ": '" + token + "' is not a token id (a non-negative integer)");
    ids.push_back(static_cast<int32_t>(value));
    token.clear();
  };
  bool after_comma = false;
  for (char c : text) {
    if (c == ',') {
      if (token.empty() && (after_comma || ids.empty()))
        throw Error(flag + ": empty entry in the list '" + text.substr(0, 80) + "'");
      flush();
      after_comma = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      flush();
    } else {
      token.push_back(c);
      after_comma = false;
    }
  }
  flush();
  return ids;
}

void check_token_ids(const std::vector<int32_t>& ids, const ModelConfig& config,
                     const std::string& flag, const std::string& model_dir) {
  for (int32_t id : ids)
    if (id >= config.vocab_size)
      throw Error(flag + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(config.vocab_size) + ") of " + model_dir);
}

void add_threads_option(CLI::App& cmd, int& threads) {
  threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cmd.add_option("-t,--threads", threads, "Worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
}

void add_dtype_option(CLI::App& cmd, std::string& dtype) {
  dtype = "as-stored";
  cmd.add_option("--dtype", dtype, "Weight matrices as stored, or converted to this dtype at load")
      ->capture_default_str()
      ->check(CLI::IsMember({"as-stored", "f32", "bf16", "f16"}));
}

LoadOptions load_options_for(const std::string& dtype) {
  LoadOptions options;
  if (dtype == "f32") options.matrix_dtype = WeightDType::F32;
  if (dtype == "bf16") options.matrix_dtype = WeightDType::BF16;
  if (dtype == "f16") options.matrix_dtype = WeightDType::F16;
  return options;
}

std::string read_text_file(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(flag + ": cannot open '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string shipped_model_dir() {
  namespace fs = std::filesystem;
  const char* kName = "shakespeare-mamba2";
  std::vector<fs::path> candidates;

  // The program sits in build/ (or bin/ of an install); the models folder is one up.
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    candidates.push_back(exe.parent_path().parent_path() / "models" / kName);
    candidates.push_back(exe.parent_path().parent_path() / "share" / "mambacpp" / "models" / kName);
  }
  candidates.push_back(fs::path(MAMBACPP_SOURCE_MODELS_DIR) / kName);

  std::string looked;
  for (const fs::path& dir : candidates) {
    if (fs::exists(dir / "config.json", ec)) return dir.string();
    if (looked.find(dir.string()) != std::string::npos) continue;
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  throw Error("--model: not given, and the shipped model is not in " + looked +
              "; pass -m DIR with a checkpoint directory");
}

}  // namespace mambacpp::cli
