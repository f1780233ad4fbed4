// Every golden model against the reference implementation's outputs: logits of the
// parallel forward, of token-by-token decode and of prefill-then-decode, the final
// states, the intermediate activations, and the batch sequences.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <random>

#include "mambacpp/model.h"
#include "support/golden_file.h"

namespace mambacpp::testing {
namespace {

// The reference's float32 logits agree with its float64 run to about 1e-7; these bounds
// leave room for a different f32 summation order and nothing more.
constexpr double kLogitsAtol = 1e-5, kLogitsRtol = 1e-5;
constexpr double kStateAtol = 1e-5;

struct GoldenCase {
  const char* name;  // folder under tests/data/golden
};

std::vector<GoldenCase> golden_cases() {
  return {{"mamba1_tiny"},   {"mamba1_tiny/hf"},  {"mamba1_dtrank_bias"}, {"mamba2_tiny"},
          {"mamba2_tiny/hf"}, {"mamba2_groups"}, {"mamba2_mlp"},         {"hybrid_attn"}};
}

// The worst logits error seen per model, printed at the end for the closing figures.
std::map<std::string, double>& worst_errors() {
  static std::map<std::string, double> errors;
  return errors;
}

class GoldenModel : public ::testing::TestWithParam<GoldenCase> {
 protected:
  void SetUp() override {
    std::string dir = test_data(std::string("golden/") + GetParam().name);
    model_ = Model::load(dir);
    std::string golden_dir = dir;
    if (golden_dir.size() > 3 && golden_dir.substr(golden_dir.size() - 3) == "/hf")
      golden_dir = golden_dir.substr(0, golden_dir.size() - 3);
    golden_ = std::make_unique<SafetensorsFile>(golden_dir + "/golden.safetensors");
  }

  std::vector<std::string> sequences() const {
    std::vector<std::string> out;
    for (int k = 0; golden_->find("seq" + std::to_string(k) + ".input_ids"); ++k)
      out.push_back("seq" + std::to_string(k));
    return out;
  }

  int64_t vocab() const { return model_->config().padded_vocab_size; }

  // Logits of every position, feeding `ids` in pieces of `piece` tokens (0: whole).
  std::vector<float> logits_in_pieces(const std::vector<int32_t>& ids, int64_t piece,
                                      State& state) {
    const int64_t n = static_cast<int64_t>(ids.size());
    if (piece <= 0) piece = n;
    std::vector<float> logits(static_cast<size_t>(n * vocab()));
    for (int64_t begin = 0; begin < n; begin += piece) {
      int64_t count = std::min(piece, n - begin);
      model_->forward(std::span<const int32_t>(ids.data() + begin, count), state, LogitsFor::All,
                      logits.data() + begin * vocab(), pool_);
    }
    return logits;
  }

  void note_error(double error) {
    double& worst = worst_errors()[GetParam().name];
    worst = std::max(worst, error);
  }

  void expect_states(const State& state, const std::string& prefix, const std::string& suffix) {
    for (size_t i = 0; i < state.layers.size(); ++i) {
      std::string base = prefix + ".state." + std::to_string(i) + ".";
      const LayerState& layer = state.layers[i];
      if (golden_->find(base + "conv" + suffix))
        expect_close(layer.conv_state, read_floats(*golden_, base + "conv" + suffix), kStateAtol, 0,
                     base + "conv" + suffix);
      if (golden_->find(base + "ssm" + suffix))
        expect_close(layer.ssm_state, read_floats(*golden_, base + "ssm" + suffix), kStateAtol, 0,
                     base + "ssm" + suffix);
      if (golden_->find(base + "kv" + suffix))
        expect_close(layer.kv_cache, read_floats(*golden_, base + "kv" + suffix), kStateAtol, 0,
                     base + "kv" + suffix);
    }
  }

  std::shared_ptr<const Model> model_;
  std::unique_ptr<SafetensorsFile> golden_;
  ThreadPool pool_{2};
};

TEST_P(GoldenModel, ParallelLogitsAndStates) {
  for (const std::string& seq : sequences()) {
    std::vector<int32_t> ids = read_ids(*golden_, seq + ".input_ids");
    State state = model_->new_state();
    std::vector<float> logits = logits_in_pieces(ids, 0, state);
    note_error(expect_close(logits, read_floats(*golden_, seq + ".logits"), kLogitsAtol,
                            kLogitsRtol, seq + ".logits"));
    expect_states(state, seq, "");
    // The reference also captured the caches its parallel prefill of the whole sequence
    // leaves behind, for some sequences.
    expect_states(state, seq, "_prefill");
  }
}

TEST_P(GoldenModel, DecodeLogits) {
  for (const std::string& seq : sequences()) {
    std::vector<int32_t> ids = read_ids(*golden_, seq + ".input_ids");
    State state = model_->new_state();
    std::vector<float> logits = logits_in_pieces(ids, 1, state);
    note_error(expect_close(logits, read_floats(*golden_, seq + ".logits_decode"), kLogitsAtol,
                            kLogitsRtol, seq + ".logits_decode"));
    expect_states(state, seq, "");
  }
}

TEST_P(GoldenModel, PrefillThenDecodeLogits) {
  int checked = 0;
  for (const std::string& seq : sequences()) {
    if (!golden_->find(seq + ".prefill_len")) continue;
    std::vector<int32_t> ids = read_ids(*golden_, seq + ".input_ids");
    int64_t prefill_len = read_ids(*golden_, seq + ".prefill_len")[0];
    const int64_t n = static_cast<int64_t>(ids.size());

    State state = model_->new_state();
    std::vector<float> logits(static_cast<size_t>(n * vocab()));
    model_->forward(std::span<const int32_t>(ids.data(), prefill_len), state, LogitsFor::All,
                    logits.data(), pool_);
    for (int64_t t = prefill_len; t < n; ++t)
      model_->forward(std::span<const int32_t>(ids.data() + t, 1), state, LogitsFor::All,
                      logits.data() + t * vocab(), pool_);

    note_error(expect_close(logits, read_floats(*golden_, seq + ".logits_prefill_decode"),
                            kLogitsAtol, kLogitsRtol, seq + ".logits_prefill_decode"));
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST_P(GoldenModel, Activations) {
  for (const std::string& seq : sequences()) {
    std::vector<int32_t> ids = read_ids(*golden_, seq + ".input_ids");
    std::map<std::string, std::vector<float>> seen;
    State state = model_->new_state();
    std::vector<float> logits(ids.size() * vocab());
    model_->forward(ids, state, LogitsFor::All, logits.data(), pool_,
                    [&](const std::string& name, const float* data, int64_t rows, int64_t cols) {
                      seen[name].assign(data, data + rows * cols);
                    });
    int compared = 0;
    for (const auto& [name, values] : seen) {
      if (!golden_->find(seq + "." + name)) continue;
      expect_close(values, read_floats(*golden_, seq + "." + name), kStateAtol, kLogitsRtol,
                   seq + "." + name);
      ++compared;
    }
    EXPECT_GE(compared, 3) << seq;
  }
}

TEST_P(GoldenModel, BatchSequences) {
  const TensorEntry& ids_entry = golden_->get("batch.input_ids");
  const int64_t B = ids_entry.shape[0], L = ids_entry.shape[1];
  std::vector<int32_t> all_ids = read_ids(*golden_, "batch.input_ids");
  std::vector<float> expected = read_floats(*golden_, "batch.logits");
  std::vector<float> expected_decode = read_floats(*golden_, "batch.logits_decode");

  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> ids(all_ids.begin() + b * L, all_ids.begin() + (b + 1) * L);
    std::vector<float> row_expected(expected.begin() + b * L * vocab(),
                                    expected.begin() + (b + 1) * L * vocab());
    std::vector<float> row_expected_decode(expected_decode.begin() + b * L * vocab(),
                                           expected_decode.begin() + (b + 1) * L * vocab());
    State whole = model_->new_state();
    note_error(expect_close(logits_in_pieces(ids, 0, whole), row_expected, kLogitsAtol, kLogitsRtol,
                            "batch.logits row " + std::to_string(b)));
    State stepwise = model_->new_state();
    note_error(expect_close(logits_in_pieces(ids, 1, stepwise), row_expected_decode, kLogitsAtol,
                            kLogitsRtol, "batch.logits_decode row " + std::to_string(b)));
  }
}

// A prompt fed in pieces through the state gives the one-shot logits and state.
TEST_P(GoldenModel, ChunkedPrefillMatchesOneShot) {
  std::vector<std::string> seqs = sequences();
  const std::string& seq = seqs.back();  // the longest
  std::vector<int32_t> ids = read_ids(*golden_, seq + ".input_ids");
  std::vector<float> expected = read_floats(*golden_, seq + ".logits");

  std::mt19937 rng(1234);
  int64_t random_piece = std::uniform_int_distribution<int64_t>(6, ids.size() - 1)(rng);
  for (int64_t piece : {1, 2, 3, 4, 5, static_cast<int>(random_piece)}) {
    State state = model_->new_state();
    note_error(expect_close(logits_in_pieces(ids, piece, state), expected, kLogitsAtol, kLogitsRtol,
                            seq + " in pieces of " + std::to_string(piece)));
    expect_states(state, seq, "");
  }
}

// Prompts of length 1, shorter than d_conv and equal to d_conv: the reference's logits
// of a prefix are the first rows of the whole sequence's logits (the model is causal).
TEST_P(GoldenModel, ShortPrompts) {
  std::vector<std::string> seqs = sequences();
  const std::string& seq = seqs.back();
  std::vector<int32_t> ids = read_ids(*golden_, seq + ".input_ids");
  std::vector<float> expected = read_floats(*golden_, seq + ".logits");
  const int64_t d_conv = model_->config().d_conv;

  for (int64_t length : {int64_t{1}, d_conv - 1, d_conv}) {
    std::vector<int32_t> prefix(ids.begin(), ids.begin() + length);
    std::vector<float> prefix_expected(expected.begin(), expected.begin() + length * vocab());
    State state = model_->new_state();
    note_error(expect_close(logits_in_pieces(prefix, 0, state), prefix_expected, kLogitsAtol,
                            kLogitsRtol, seq + " prefix of " + std::to_string(length)));
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, GoldenModel, ::testing::ValuesIn(golden_cases()),
                         [](const auto& info) {
                           std::string name = info.param.name;
                           for (char& c : name)
                             if (c == '/') c = '_';
                           return name;
                         });

// Prints the worst logits error per model after all tests, for the closing figures.
class WorstErrorReport : public ::testing::Environment {
 public:
  void TearDown() override {
    for (const auto& [name, error] : worst_errors())
      std::printf("worst logits |diff| %-22s %.3g\n", name.c_str(), error);
  }
};
const auto* const kReport = ::testing::AddGlobalTestEnvironment(new WorstErrorReport);

}  // namespace
}  // namespace mambacpp::testing
