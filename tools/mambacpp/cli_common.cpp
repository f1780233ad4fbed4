#include "cli_common.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "mambacpp/error.h"

namespace mambacpp::cli {

std::vector<int32_t> parse_ids(const std::string& text, const std::string& flag) {
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
  for (char c : text) {
    if (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      flush();
    } else {
      token.push_back(c);
    }
  }
  flush();
  return ids;
}

void add_threads_option(CLI::App& cmd, int& threads) {
  threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cmd.add_option("-t,--threads", threads, "Worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
}

std::string read_text_file(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(flag + ": cannot open '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace mambacpp::cli
