// `mambacpp train` input checks, run as a user would run them. Each bad input must end with
// one "error: ..." line that names the flag or file, exit code 2 for an invalid command
// line and 1 for bad files, before any model is built.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "support/golden_file.h"
#include "unit/checkpoint_fixtures.h"

extern char** environ;

namespace mambacpp::testing {
namespace {

struct TrainRun {
  int exit_code = -1;  // -1: ended by a signal
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const TrainRun& r) {
  return os << "exit code " << r.exit_code << "\n--- stdout ---\n" << r.out << "\n--- stderr ---\n" << r.err;
}

// Runs `mambacpp train ARGS...` with stdout and stderr captured in files, and waits for it.
TrainRun run_train(const std::vector<std::string>& args) {
  TempDir capture;
  const std::string out_path = capture.file("stdout"), err_path = capture.file("stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);

  std::vector<std::string> argv_strings{MAMBACPP_CLI_PATH, "train"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  TrainRun run;
  pid_t pid;
  const int spawn_error = posix_spawn(&pid, MAMBACPP_CLI_PATH, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    ADD_FAILURE() << "cannot start " << MAMBACPP_CLI_PATH << ": " << std::strerror(spawn_error);
    return run;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.out = read_bytes(out_path);
  run.err = read_bytes(err_path);
  return run;
}

// Checks for exit code `code`, nothing on stdout and one stderr line containing `parts`.
void expect_failure(const TrainRun& r, int code, std::initializer_list<std::string> parts) {
  EXPECT_EQ(r.exit_code, code) << r;
  EXPECT_EQ(r.out, "") << r;
  std::istringstream in(r.err);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u) << r;
  EXPECT_EQ(lines[0].rfind("error: ", 0), 0u) << r;
  for (const std::string& part : parts)
    EXPECT_NE(lines[0].find(part), std::string::npos) << "stderr does not name \"" << part << "\"\n" << r;
}

// A directory with a state-spaces config.json for the GPT-NeoX vocabulary, the GPT-NeoX
// tokenizer and a training text of a few hundred tokens.
class TrainInputs {
 public:
  TrainInputs() {
    write_bytes(config(), R"({"d_model": 16, "n_layer": 1, "vocab_size": 50277,
                             "ssm_cfg": {"layer": "Mamba2", "headdim": 8}})");
    std::string text;
    for (int i = 0; i < 40; ++i) text += "The quick brown fox jumps over the lazy dog. ";
    write_bytes(data(), text);
  }
  std::string config() const { return dir.file("config.json"); }
  std::string data() const { return dir.file("text.txt"); }
  std::string out() const { return dir.file("out"); }
  std::string tokenizer() const { return test_data("tokenizer/tokenizer.json"); }

  TempDir dir;
};

TEST(TrainCli, NoModelSourceIsUsageError) {
  TrainInputs in;
  expect_failure(run_train({"--tokenizer", in.tokenizer(), "--data", in.data(), "--out", in.out()}), 2,
                 {"--config", "--init", "--resume"});
}

TEST(TrainCli, TwoModelSourcesAreUsageError) {
  TrainInputs in;
  expect_failure(run_train({"--config", in.config(), "--init", in.dir.path().string(), "--tokenizer",
                            in.tokenizer(), "--data", in.data(), "--out", in.out()}),
                 2, {"--config", "--init"});
}

TEST(TrainCli, MissingFlagValuesAreNamed) {
  TrainInputs in;
  expect_failure(run_train({"--config", in.config(), "--data", in.data(), "--out", in.out()}), 2, {"--tokenizer"});
  expect_failure(run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--out", in.out()}), 2,
                 {"--data"});
  expect_failure(run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--data", in.data()}), 2,
                 {"--out"});
}

TEST(TrainCli, InvalidNumbersAreNamed) {
  TrainInputs in;
  const std::vector<std::string> base{"--config", in.config(), "--tokenizer", in.tokenizer(),
                                      "--data", in.data(), "--out", in.out()};
  const std::vector<std::pair<std::string, std::string>> cases{
      {"--steps", "0"}, {"--batch", "-2"}, {"--ctx", "abc"}, {"--grad-accum", "0"}, {"--lr", "0"},
      {"--warmup", "-1"}, {"--eval-every", "x"}, {"--save-every", "-5"}, {"--val-fraction", "1"},
      {"--threads", "0"}};
  for (const auto& [flag, value] : cases) {
    SCOPED_TRACE(flag + " " + value);
    std::vector<std::string> args = base;
    args.push_back(flag);
    args.push_back(value);
    expect_failure(run_train(args), 2, {flag});
  }
}

TEST(TrainCli, MissingFilesAreNamed) {
  TrainInputs in;
  const std::string missing = in.dir.file("missing");
  expect_failure(run_train({"--config", missing, "--tokenizer", in.tokenizer(), "--data", in.data(),
                            "--out", in.out()}),
                 2, {"--config", missing});
  expect_failure(run_train({"--config", in.config(), "--tokenizer", missing, "--data", in.data(),
                            "--out", in.out()}),
                 2, {"--tokenizer", missing});
  expect_failure(run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--data", in.data(),
                            missing, "--out", in.out()}),
                 2, {"--data", missing});
  expect_failure(run_train({"--init", missing, "--data", in.data(), "--out", in.out()}), 2, {"--init", missing});
  expect_failure(run_train({"--resume", missing}), 2, {"--resume", missing});
}

TEST(TrainCli, EmptyTextIsNamed) {
  TrainInputs in;
  write_bytes(in.dir.file("empty.txt"), "");
  expect_failure(run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--data",
                            in.dir.file("empty.txt"), "--out", in.out()}),
                 1, {in.dir.file("empty.txt"), "empty"});
}

TEST(TrainCli, TextShorterThanWindowIsNamed) {
  TrainInputs in;
  expect_failure(run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--data", in.data(),
                            "--out", in.out(), "--ctx", "4096"}),
                 1, {"--data", in.data(), "fewer than one window"});
}

TEST(TrainCli, InvalidConfigIsNamed) {
  TrainInputs in;
  write_bytes(in.config(), R"({"d_model": "big"})");
  expect_failure(run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--data", in.data(),
                            "--out", in.out()}),
                 1, {in.config(), "d_model"});
}

TEST(TrainCli, TokenizerLargerThanVocabulary) {
  TrainInputs in;
  write_bytes(in.config(), R"({"d_model": 16, "n_layer": 1, "vocab_size": 256})");
  expect_failure(run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--data", in.data(),
                            "--out", in.out()}),
                 1, {"--tokenizer", "50277", "256"});
}

TEST(TrainCli, ResumeWithoutTrainState) {
  // A checkpoint directory that was never trained by `mambacpp train`.
  TrainInputs in;
  TempDir checkpoint;
  copy_model(test_data("golden/mamba1_tiny"), checkpoint.path());
  expect_failure(run_train({"--resume", checkpoint.path().string(), "--tokenizer", in.tokenizer(), "--data",
                            in.data()}),
                 1, {checkpoint.file("train_state.json"), "not found"});
}

TEST(TrainCli, ResumeRejectsRunOptions) {
  TrainInputs in;
  expect_failure(run_train({"--resume", in.dir.path().string(), "--lr", "0.1"}), 2, {"--lr", "--resume"});
  expect_failure(run_train({"--resume", in.dir.path().string(), "--steps", "10"}), 2, {"--steps", "--resume"});
}

// A short run that finishes, then --resume on it: nothing is left to train, and the
// message points to --init for training further. The short run also warns that its
// warmup covers the whole run.
TEST(TrainCli, ResumeOfCompleteRunSaysSo) {
  TrainInputs in;
  TrainRun first = run_train({"--config", in.config(), "--tokenizer", in.tokenizer(), "--data", in.data(),
                              "--out", in.out(), "--steps", "2", "--batch", "2", "--ctx", "16",
                              "--val-fraction", "0.2"});
  ASSERT_EQ(first.exit_code, 0) << first;
  EXPECT_NE(first.err.find("warning: --warmup 100 is not shorter than --steps 2"), std::string::npos) << first;

  TrainRun again = run_train({"--resume", in.out()});
  ASSERT_EQ(again.exit_code, 0) << again;
  EXPECT_NE(again.err.find("is complete (step 2 of 2)"), std::string::npos) << again;
  EXPECT_NE(again.err.find("--init " + in.out()), std::string::npos) << again;
}

TEST(TrainCli, HelpListsFlags) {
  TrainRun r = run_train({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (const char* flag : {"--config", "--tokenizer", "--data", "--out", "--steps", "--batch", "--ctx", "--lr",
                           "--warmup", "--grad-accum", "--eval-every", "--save-every", "--seed", "--resume",
                           "--init", "--threads"})
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag << "\n" << r;
}

}  // namespace
}  // namespace mambacpp::testing
