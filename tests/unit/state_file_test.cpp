// Forking, saving and restoring a sequence's state, on every kind of layer the golden
// models have (Mamba-1, Mamba-2, attention with its key/value cache).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "mambacpp/error.h"
#include "mambacpp/model.h"
#include "runtime/state_file.h"
#include "support/golden_file.h"

namespace mambacpp {
namespace {

using testing::test_data;

std::vector<int32_t> token_range(int32_t first, int32_t count) {
  std::vector<int32_t> ids;
  for (int32_t i = 0; i < count; ++i) ids.push_back((first + 7 * i) % 250);
  return ids;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class StateFile : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    model_ = Model::load(test_data(std::string("golden/") + GetParam()));
    dir_ = std::filesystem::temp_directory_path() /
           ("mambacpp_state_test_" + std::to_string(::getpid()) + "_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()).substr(0, 20));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::vector<float> run(const std::vector<int32_t>& ids, State& state) {
    std::vector<float> logits(ids.size() * model_->config().padded_vocab_size);
    model_->forward(ids, state, LogitsFor::All, logits.data(), pool_);
    return logits;
  }

  std::string path(const char* name) const { return (dir_ / name).string(); }

  std::shared_ptr<const Model> model_;
  std::filesystem::path dir_;
  ThreadPool pool_{2};
};

TEST_P(StateFile, ForkedBranchesMatchSeparateRuns) {
  State prefix = model_->new_state();
  run(token_range(3, 20), prefix);
  save_state(path("prefix.state"), *model_, prefix);

  State branch_a = prefix;  // fork
  State branch_b = prefix;
  std::vector<float> a_logits = run(token_range(11, 6), branch_a);
  std::vector<float> b_logits = run(token_range(40, 9), branch_b);
  EXPECT_NE(std::vector<float>(b_logits.begin(), b_logits.begin() + a_logits.size()), a_logits);

  // Branch A again, alone, from the saved state: the other branch left no trace.
  State again = load_state(path("prefix.state"), *model_);
  EXPECT_EQ(run(token_range(11, 6), again), a_logits);  // bit for bit
  EXPECT_EQ(again.n_tokens, 26);
}

TEST_P(StateFile, LoadedStateContinuesBitForBit) {
  State state = model_->new_state();
  run(token_range(5, 21), state);
  save_state(path("after_prompt.state"), *model_, state);
  std::string saved_bytes = read_bytes(path("after_prompt.state"));

  std::vector<float> uninterrupted = run(token_range(17, 8), state);

  State loaded = load_state(path("after_prompt.state"), *model_);
  EXPECT_EQ(loaded.n_tokens, 21);
  EXPECT_EQ(run(token_range(17, 8), loaded), uninterrupted);
  EXPECT_EQ(read_bytes(path("after_prompt.state")), saved_bytes) << "loading changed the file";
}

TEST_P(StateFile, DamagedFilesAreRejected) {
  State state = model_->new_state();
  run(token_range(1, 5), state);
  save_state(path("good.state"), *model_, state);
  const std::string good = read_bytes(path("good.state"));

  struct Damage {
    const char* name;
    std::string bytes;
    const char* message_part;
  };
  std::string flipped = good;
  flipped[flipped.size() - 3] ^= 0x40;
  std::string wrong_version = good;
  wrong_version[8] = 9;
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  const Damage cases[] = {
      {"truncated_data", good.substr(0, good.size() - 4), "bytes of state data"},
      {"truncated_header", good.substr(0, 30), "past the end"},
      {"empty", "", "magic"},
      {"corrupt", flipped, "checksum"},
      {"version", wrong_version, "version 9"},
      {"magic", bad_magic, "magic"},
      {"padded", good + "xyz", "bytes of state data"},
  };
  for (const auto& c : cases) {
    write_bytes(path(c.name), c.bytes);
    try {
      load_state(path(c.name), *model_);
      ADD_FAILURE() << c.name << ": no error";
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_NE(message.find(path(c.name)), std::string::npos) << message;
      EXPECT_NE(message.find(c.message_part), std::string::npos) << c.name << ": " << message;
    }
  }
}

TEST_P(StateFile, StateOfAnotherModelIsRejected) {
  auto other = Model::load(test_data(std::string("golden/") +
                                     (std::string(GetParam()) == "mamba1_tiny" ? "mamba1_dtrank_bias" : "mamba1_tiny")));
  State state = other->new_state();
  save_state(path("other.state"), *other, state);
  try {
    load_state(path("other.state"), *model_);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Models, StateFile,
                         ::testing::Values("mamba1_tiny", "mamba2_tiny", "hybrid_attn"));

}  // namespace
}  // namespace mambacpp
