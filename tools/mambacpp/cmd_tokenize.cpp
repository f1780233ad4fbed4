// `mambacpp tokenize`: text to token ids (or back with --decode) with a checkpoint's
// tokenizer.json, printed as JSON so scripts can compare against Hugging Face tokenizers.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "cli_common.h"
#include "commands.h"
#include "mambacpp/error.h"
#include "mambacpp/tokenizer.h"

namespace mambacpp::cli {

namespace {

using nlohmann::json;

struct TokenizeOptions {
  std::string model_dir;
  std::string tokenizer_file;
  std::string text;
  std::string input_file;
  bool jsonl = false;
  bool decode = false;
  bool tokens = false;
  bool no_template = false;
  bool skip_special = false;
};

void write_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

std::string read_stdin() {
  std::ostringstream content;
  content << std::cin.rdbuf();
  return std::move(content).str();
}

// Accepts "[1, 2, 3]", "1,2,3" or "1 2 3".
std::vector<int32_t> parse_id_list(std::string text, const std::string& source) {
  for (char& c : text) {
    if (c == '[' || c == ']') c = ' ';
  }
  return parse_ids(text, source);
}

json encode_result(const Tokenizer& tokenizer, const std::string& text, const TokenizeOptions& opt) {
  const std::vector<int32_t> ids = tokenizer.encode(text, !opt.no_template);
  if (!opt.tokens) return json(ids);
  return json{{"ids", ids}, {"tokens", tokenizer.ids_to_tokens(ids)}};
}

// One JSON value per stdin line: a string to encode, or with --decode an array of ids.
// Rejects ids the tokenizer does not have, which decode() would skip without a word.
void check_known_ids(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, const std::string& where) {
  for (int32_t id : ids)
    if (id < 0 || static_cast<std::size_t>(id) >= tokenizer.vocab_size())
      throw Error(where + ": token id " + std::to_string(id) + " is outside the tokenizer's vocabulary [0, " +
                  std::to_string(tokenizer.vocab_size()) + ")");
}

void run_jsonl(const Tokenizer& tokenizer, const TokenizeOptions& opt) {
  std::string line;
  for (std::size_t line_number = 1; std::getline(std::cin, line); ++line_number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = "stdin line " + std::to_string(line_number);
    json value;
    try {
      value = json::parse(line);
    } catch (const json::parse_error& e) {
      throw Error(where + ": invalid JSON: " + e.what());
    }
    if (opt.decode) {
      if (!value.is_array()) throw Error(where + ": --decode --jsonl expects a JSON array of ids");
      std::vector<int32_t> ids;
      for (const json& id : value) {
        if (!id.is_number_integer()) throw Error(where + ": " + id.dump() + " is not a token id");
        ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
      check_known_ids(tokenizer, ids, where);
      write_line(json(tokenizer.decode(ids, opt.skip_special)).dump());
    } else {
      if (!value.is_string()) throw Error(where + ": --jsonl expects one JSON string per line");
      write_line(encode_result(tokenizer, value.get<std::string>(), opt).dump());
    }
  }
}

void run_tokenize(const TokenizeOptions& opt) {
  const Tokenizer tokenizer = opt.tokenizer_file.empty() ? Tokenizer::from_directory(opt.model_dir)
                                                         : Tokenizer::from_file(opt.tokenizer_file);
  if (opt.jsonl) {
    if (!opt.text.empty() || !opt.input_file.empty()) {
      throw Error("--jsonl reads stdin, so it takes no TEXT or -f/--file");
    }
    run_jsonl(tokenizer, opt);
    return;
  }

  std::string input;
  std::string source = "TEXT";
  if (!opt.input_file.empty()) {
    input = read_text_file(opt.input_file, "-f/--file");
    source = "-f/--file " + opt.input_file;
  } else if (!opt.text.empty()) {
    input = opt.text;
  } else {
    input = read_stdin();
    source = "stdin";
  }

  if (opt.decode) {
    const std::vector<int32_t> ids = parse_id_list(input, source);
    check_known_ids(tokenizer, ids, source);
    const std::string text = tokenizer.decode(ids, opt.skip_special);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    return;
  }
  write_line(encode_result(tokenizer, input, opt).dump());
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Print the token ids of text as a JSON array, or decode ids with --decode");
  auto* model = cmd->add_option(
      "-m,--model", opt->model_dir,
      "Model directory; reads DIR/tokenizer.json (this or --tokenizer is required)");
  auto* file = cmd->add_option("--tokenizer", opt->tokenizer_file, "Path of a tokenizer.json file");
  model->excludes(file);
  cmd->add_option("text", opt->text,
                  "Text to encode (with --decode: ids as \"1,2,3\", \"1 2 3\" or \"[1, 2, 3]\"); "
                  "without TEXT or -f, stdin is read");
  auto* input = cmd->add_option("-f,--file", opt->input_file,
                                "Read the text (or ids) from this file; default: TEXT, else stdin");
  input->excludes(cmd->get_option("text"));
  cmd->add_flag("--jsonl", opt->jsonl,
                "Read one JSON string per stdin line and write one JSON array of ids per line "
                "(with --decode: arrays of ids in, JSON strings out); default: off");
  cmd->add_flag("--decode", opt->decode, "Decode ids to text instead of encoding; default: off");
  cmd->add_flag("--tokens", opt->tokens,
                "Print {\"ids\": [...], \"tokens\": [...]} with the token strings; default: off");
  cmd->add_flag("--no-template", opt->no_template,
                "Encode without the special tokens the post-processor adds (none for GPT-NeoX); "
                "default: off");
  cmd->add_flag("--skip-special", opt->skip_special,
                "With --decode, leave out special tokens; default: off");
  cmd->callback([opt, model, file] {
    if (model->count() == 0 && file->count() == 0) {
      throw Error("tokenize: give -m/--model DIR or --tokenizer FILE");
    }
    run_tokenize(*opt);
  });
}

}  // namespace mambacpp::cli
