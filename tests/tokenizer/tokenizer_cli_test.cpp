// Runs the built `mambacpp tokenize` binary and checks its output and its errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "tokenizer/test_support.h"

namespace mambacpp::tokenizer_test {
namespace {

using nlohmann::json;

struct CliResult {
  int exit_code;
  std::string out;
  std::string err;
};

std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

class TokenizerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mambacpp_tokenize_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path write(const std::string& name, const std::string& content) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  CliResult run(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    const auto in = write("stdin.txt", stdin_text);
    std::string command = shell_quote(MAMBACPP_CLI_PATH);
    for (const auto& arg : args) {
      command.append(" ").append(shell_quote(arg));
    }
    command.append(" < ").append(shell_quote(in.string()));
    command.append(" > ").append(shell_quote((dir_ / "out.txt").string()));
    command.append(" 2> ").append(shell_quote((dir_ / "err.txt").string()));
    const int status = std::system(command.c_str());
    CliResult result;
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.out = read_file(dir_ / "out.txt");
    result.err = read_file(dir_ / "err.txt");
    return result;
  }

  // Bad input must give exit status 1 and exactly one line on stderr starting "error: ".
  void expect_one_line_error(const CliResult& result, const std::string& fragment) {
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.err.rfind("error: ", 0), 0u) << result.err;
    ASSERT_FALSE(result.err.empty());
    EXPECT_EQ(result.err.find('\n'), result.err.size() - 1) << result.err;
    EXPECT_NE(result.err.find(fragment), std::string::npos) << result.err;
  }

  std::filesystem::path dir_;
};

const std::string kTokenizer = tokenizer_json_path().string();

TEST_F(TokenizerCli, EncodesTextArgument) {
  const CliResult result = run({"tokenize", "--tokenizer", kTokenizer, "Hello world"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "[12092,1533]\n");
}

TEST_F(TokenizerCli, ModelDirectoryAndFile) {
  const auto model_dir = dir_ / "model";
  std::filesystem::create_directories(model_dir);
  std::filesystem::copy_file(tokenizer_json_path(), model_dir / "tokenizer.json");
  const auto text = write("input.txt", "  two spaces");
  const CliResult result = run({"tokenize", "-m", model_dir.string(), "-f", text.string()});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "[50276,9389,8470]\n");
}

TEST_F(TokenizerCli, ShowsTokens) {
  const CliResult result = run({"tokenize", "--tokenizer", kTokenizer, "--tokens", "Hello world"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const json output = json::parse(result.out);
  EXPECT_EQ(output.at("ids"), json({12092, 1533}));
  EXPECT_EQ(output.at("tokens"), json({"Hello", "\xC4\xA0world"}));
}

TEST_F(TokenizerCli, JsonlMatchesGoldenFile) {
  const auto records = read_jsonl(data_dir() / "tokenizer" / "golden_tokenization.jsonl");
  std::string input;
  for (const json& record : records) input += record.at("text").dump() + "\n";
  const CliResult result = run({"tokenize", "--tokenizer", kTokenizer, "--jsonl"}, input);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::istringstream lines(result.out);
  std::string line;
  std::size_t index = 0;
  for (; std::getline(lines, line); ++index) {
    ASSERT_LT(index, records.size());
    EXPECT_EQ(json::parse(line), records[index].at("ids")) << records[index].at("text").dump();
  }
  EXPECT_EQ(index, records.size());
}

TEST_F(TokenizerCli, DecodesIds) {
  const CliResult plain = run({"tokenize", "--tokenizer", kTokenizer, "--decode", "12092,1533"});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "Hello world\n");

  const CliResult bracketed = run({"tokenize", "--tokenizer", kTokenizer, "--decode", "[0, 12092, 1533]"});
  EXPECT_EQ(bracketed.out, "<|endoftext|>Hello world\n");
  const CliResult skipped =
      run({"tokenize", "--tokenizer", kTokenizer, "--decode", "--skip-special", "0 12092 1533"});
  EXPECT_EQ(skipped.out, "Hello world\n");

  const CliResult jsonl =
      run({"tokenize", "--tokenizer", kTokenizer, "--decode", "--jsonl"}, "[12092,1533]\n[50276]\n");
  EXPECT_EQ(jsonl.exit_code, 0) << jsonl.err;
  EXPECT_EQ(jsonl.out, "\"Hello world\"\n\"  \"\n");
}

TEST_F(TokenizerCli, ReadsStdinWithoutText) {
  const CliResult result = run({"tokenize", "--tokenizer", kTokenizer}, "Hello world");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, "[12092,1533]\n");
}

TEST_F(TokenizerCli, HelpListsEveryFlag) {
  const CliResult result = run({"tokenize", "--help"});
  EXPECT_EQ(result.exit_code, 0);
  for (const char* flag : {"--model", "--tokenizer", "--file", "--jsonl", "--decode", "--tokens",
                           "--no-template", "--skip-special"}) {
    EXPECT_NE(result.out.find(flag), std::string::npos) << flag;
  }
}

TEST_F(TokenizerCli, MissingTokenizerFile) {
  expect_one_line_error(run({"tokenize", "--tokenizer", (dir_ / "nope.json").string(), "x"}), "nope.json");
  expect_one_line_error(run({"tokenize", "-m", (dir_ / "no_model").string(), "x"}), "no_model");
}

TEST_F(TokenizerCli, MissingInputFile) {
  expect_one_line_error(run({"tokenize", "--tokenizer", kTokenizer, "-f", (dir_ / "absent.txt").string()}),
                        "absent.txt");
}

TEST_F(TokenizerCli, NoTokenizerGiven) {
  expect_one_line_error(run({"tokenize", "x"}), "--tokenizer");
}

TEST_F(TokenizerCli, MalformedTokenizerJson) {
  const auto path = write("broken.json", "{\"model\": {\"vocab\": ");
  expect_one_line_error(run({"tokenize", "--tokenizer", path.string(), "x"}), "broken.json");
}

TEST_F(TokenizerCli, UnsupportedComponent) {
  const auto path = write("wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {}}})");
  const CliResult result = run({"tokenize", "--tokenizer", path.string(), "x"});
  expect_one_line_error(result, "unsupported tokenizer component model \"WordPiece\"");
  EXPECT_NE(result.err.find("wordpiece.json"), std::string::npos);
}

TEST_F(TokenizerCli, InvalidUtf8Input) {
  const auto path = write("latin1.txt", "caf\xE9");
  expect_one_line_error(run({"tokenize", "--tokenizer", kTokenizer, "-f", path.string()}), "not valid UTF-8");
}

TEST_F(TokenizerCli, BadJsonlLine) {
  expect_one_line_error(run({"tokenize", "--tokenizer", kTokenizer, "--jsonl"}, "\"ok\"\nnot json\n"),
                        "stdin line 2");
  expect_one_line_error(run({"tokenize", "--tokenizer", kTokenizer, "--jsonl"}, "[1, 2]\n"), "stdin line 1");
}

TEST_F(TokenizerCli, BadIdsForDecode) {
  expect_one_line_error(run({"tokenize", "--tokenizer", kTokenizer, "--decode", "12,abc"}), "abc");
}

}  // namespace
}  // namespace mambacpp::tokenizer_test
