// Model::load on copies of the mamba1_tiny golden checkpoint that were changed on disk.
// A broken copy must raise one Error naming the file, the tensor and the shapes. A valid
// variant (sharded, F16, BF16, tied with lm_head.weight listed, Hugging Face tensor names)
// must give the golden logits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "mambacpp/model.h"
#include "support/golden_file.h"
#include "unit/checkpoint_fixtures.h"

namespace mambacpp::testing {
namespace {

// The golden logits came from the reference's float32 run. With the same float32 weights
// only the summation order differs, so the bounds are those of the golden model tests.
constexpr double kF32Atol = 1e-5, kF32Rtol = 1e-5;

const std::string kTinyDir = "golden/mamba1_tiny";

// The checkpoint's padded vocabulary and width, from its config.json.
constexpr int64_t kVocab = 256, kDModel = 64;

class CheckpointLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    copy_model(test_data(kTinyDir), dir_.path());
    tensors_ = read_raw_tensors(test_data(kTinyDir + "/model.safetensors"));
  }

  std::string dir() const { return dir_.path().string(); }
  std::string weights_path() const { return dir_.file("model.safetensors"); }
  void write_weights() { write_raw_tensors(weights_path(), tensors_); }
  void write_config(const std::string& text) { write_bytes(dir_.file("config.json"), text); }

  void expect_load_error(std::initializer_list<std::string> parts) {
    expect_error_naming([&] { Model::load(dir()); }, parts);
  }

  TempDir dir_;
  std::vector<RawTensor> tensors_;
};

// Returns the logits of every position of `ids`, fed in one forward call.
std::vector<float> all_logits(const Model& model, const std::vector<int32_t>& ids) {
  ThreadPool pool(2);
  State state = model.new_state();
  std::vector<float> logits(ids.size() * static_cast<size_t>(model.config().padded_vocab_size));
  model.forward(ids, state, LogitsFor::All, logits.data(), pool);
  return logits;
}

// The golden sequence with the most tokens (40) and its reference logits [40, 256].
struct GoldenSequence {
  std::vector<int32_t> ids;
  std::vector<float> logits;
};

GoldenSequence golden_sequence() {
  SafetensorsFile golden(test_data(kTinyDir + "/golden.safetensors"));
  return {read_ids(golden, "seq4.input_ids"), read_floats(golden, "seq4.logits")};
}

void expect_golden_logits(const std::string& model_dir, const std::string& what) {
  auto model = Model::load(model_dir);
  GoldenSequence seq = golden_sequence();
  expect_close(all_logits(*model, seq.ids), seq.logits, kF32Atol, kF32Rtol, what);
}

TEST_F(CheckpointLoad, CopyLoadsWithGoldenLogits) {
  // The unchanged copy: the baseline every other case in this suite changes one thing in.
  expect_golden_logits(dir(), "copy of mamba1_tiny");
}

TEST_F(CheckpointLoad, MissingModelDirectory) {
  std::string missing = dir_.file("no_such_model");
  expect_error_naming([&] { Model::load(missing); }, {missing + "/config.json", "not found"});
}

TEST_F(CheckpointLoad, MissingConfigJson) {
  fs::remove(dir_.path() / "config.json");
  expect_load_error({dir_.file("config.json"), "not found"});
}

TEST_F(CheckpointLoad, MalformedConfigJson) {
  write_config(R"({"d_model": 64, "n_layer": 2,)");
  expect_load_error({dir_.file("config.json"), "invalid JSON"});
}

TEST_F(CheckpointLoad, ConfigFieldOfWrongType) {
  write_config(R"({"d_model": 64, "n_layer": "2", "vocab_size": 256})");
  expect_load_error({dir_.file("config.json"), "'n_layer'", "integer", "\"2\""});
}

TEST_F(CheckpointLoad, MissingWeightsFile) {
  fs::remove(weights_path());
  expect_load_error({dir(), "no model.safetensors"});
}

TEST_F(CheckpointLoad, MissingTensor) {
  std::erase_if(tensors_, [](const RawTensor& t) { return t.name == "backbone.layers.1.mixer.D"; });
  write_weights();
  expect_load_error({weights_path(), "'backbone.layers.1.mixer.D'", "not found", "[128]"});
}

TEST_F(CheckpointLoad, ExtraTensor) {
  tensors_.push_back({"backbone.layers.2.norm.weight", "F32", {kDModel},
                      std::string(kDModel * 4, '\0')});
  write_weights();
  expect_load_error({weights_path(), "'backbone.layers.2.norm.weight'", "unexpected", "[64]"});
}

TEST_F(CheckpointLoad, WrongShape) {
  // Same bytes, transposed shape: only the shape check can catch it.
  find_raw(tensors_, "backbone.layers.0.mixer.x_proj.weight")->shape = {128, 36};
  write_weights();
  expect_load_error({weights_path(), "'backbone.layers.0.mixer.x_proj.weight'", "[128, 36]",
                     "expected [36, 128]"});
}

TEST_F(CheckpointLoad, ConfigDisagreesWithWeights) {
  // d_state 8 makes x_proj [dt_rank + 2 * d_state, d_inner] = [4 + 16, 128], the first
  // tensor whose shape depends on d_state, but the file contains [4 + 32, 128].
  write_config(R"({"d_model": 64, "n_layer": 2, "vocab_size": 256,
                   "ssm_cfg": {"layer": "Mamba1", "d_state": 8}})");
  expect_load_error({weights_path(), "'backbone.layers.0.mixer.x_proj.weight'", "[36, 128]",
                     "expected [20, 128]"});
}

TEST_F(CheckpointLoad, UnknownDtype) {
  find_raw(tensors_, "backbone.norm_f.weight")->dtype = "Q4_K";
  write_weights();
  expect_load_error({weights_path(), "'backbone.norm_f.weight'", "unknown dtype 'Q4_K'"});
}

TEST_F(CheckpointLoad, WeightOfDtypeI64) {
  RawTensor* d = find_raw(tensors_, "backbone.layers.0.mixer.D");
  d->dtype = "I64";
  d->bytes = std::string(128 * 8, '\0');
  write_weights();
  expect_load_error({weights_path(), "'backbone.layers.0.mixer.D'", "I64", "F32, F16 or BF16"});
}

TEST_F(CheckpointLoad, TruncatedInDataSection) {
  std::string bytes = read_bytes(weights_path());
  write_bytes(weights_path(), bytes.substr(0, bytes.size() - 100));
  // backbone.norm_f.weight is the last tensor in the file.
  expect_load_error({weights_path(), "'backbone.norm_f.weight'", "data_offsets"});
}

TEST_F(CheckpointLoad, TruncatedInHeader) {
  write_bytes(weights_path(), read_bytes(weights_path()).substr(0, 1000));
  expect_load_error({weights_path(), "header length", "past the end"});
}

TEST_F(CheckpointLoad, UntiedConfigWithoutLmHead) {
  std::string config = read_bytes(dir_.file("config.json"));
  size_t at = config.find("\"tie_embeddings\": true");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, std::strlen("\"tie_embeddings\": true"), "\"tie_embeddings\": false");
  write_config(config);
  expect_load_error({weights_path(), "'lm_head.weight'", "not found", "[256, 64]"});
}

TEST_F(CheckpointLoad, TiedCheckpointListingLmHead) {
  // Tied checkpoints saved by some tools still contain lm_head.weight, a copy of the
  // embedding. It must be accepted, and the logits must not change.
  tensors_.push_back({"lm_head.weight", "F32", {kVocab, kDModel},
                      find_raw(tensors_, "backbone.embedding.weight")->bytes});
  write_weights();
  expect_golden_logits(dir(), "tied checkpoint with lm_head.weight");
}

TEST_F(CheckpointLoad, TiedLmHeadOfWrongShape) {
  tensors_.push_back({"lm_head.weight", "F32", {kVocab - 8, kDModel},
                      std::string((kVocab - 8) * kDModel * 4, '\0')});
  write_weights();
  expect_load_error({weights_path(), "'lm_head.weight'", "[248, 64]", "expected [256, 64]"});
}

TEST_F(CheckpointLoad, EmbeddingsTensorName) {
  // The Hugging Face name of the embedding, with the state-spaces config.
  find_raw(tensors_, "backbone.embedding.weight")->name = "backbone.embeddings.weight";
  write_weights();
  expect_golden_logits(dir(), "backbone.embeddings.weight layout");
}

TEST_F(CheckpointLoad, HuggingFaceDirectoryListingLmHead) {
  copy_model(test_data(kTinyDir + "/hf"), dir_.path());
  std::vector<RawTensor> hf = read_raw_tensors(weights_path());
  ASSERT_NE(find_raw(hf, "backbone.embeddings.weight"), nullptr);
  hf.push_back({"lm_head.weight", "F32", {kVocab, kDModel},
                find_raw(hf, "backbone.embeddings.weight")->bytes});
  write_raw_tensors(weights_path(), hf);
  expect_golden_logits(dir(), "Hugging Face checkpoint with lm_head.weight");
}

// A sharded checkpoint: the embedding and layer 0 in the first shard, the rest in the
// second, and the index that maps each tensor to its shard.
class ShardedCheckpoint : public CheckpointLoad {
 protected:
  static constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
  static constexpr const char* kShard2 = "model-00002-of-00002.safetensors";

  void SetUp() override {
    CheckpointLoad::SetUp();
    fs::remove(weights_path());
    for (const RawTensor& t : tensors_) {
      bool first = t.name == "backbone.embedding.weight" || t.name.starts_with("backbone.layers.0.");
      (first ? shard1_ : shard2_).push_back(t);
      weight_map_[t.name] = first ? kShard1 : kShard2;
    }
    ASSERT_FALSE(shard1_.empty());
    ASSERT_FALSE(shard2_.empty());
  }

  void write_shards() {
    write_raw_tensors(dir_.file(kShard1), shard1_);
    write_raw_tensors(dir_.file(kShard2), shard2_);
    nlohmann::json index = {{"metadata", {{"total_size", 327424}}}, {"weight_map", weight_map_}};
    write_bytes(index_path(), index.dump(2));
  }

  std::string index_path() const { return dir_.file("model.safetensors.index.json"); }

  std::vector<RawTensor> shard1_, shard2_;
  std::map<std::string, std::string> weight_map_;
};

TEST_F(ShardedCheckpoint, SameLogitsAsSingleFile) {
  write_shards();
  auto sharded = Model::load(dir());
  auto single = Model::load(test_data(kTinyDir));
  GoldenSequence seq = golden_sequence();

  std::vector<float> sharded_logits = all_logits(*sharded, seq.ids);
  // Same weights and the same kernels, so the same bits.
  EXPECT_EQ(sharded_logits, all_logits(*single, seq.ids));
  expect_close(sharded_logits, seq.logits, kF32Atol, kF32Rtol, "sharded mamba1_tiny");
}

TEST_F(ShardedCheckpoint, IndexNamesMissingShard) {
  weight_map_["backbone.norm_f.weight"] = "model-00003-of-00003.safetensors";
  write_shards();
  expect_load_error({index_path(), "'model-00003-of-00003.safetensors'", "not found"});
}

TEST_F(ShardedCheckpoint, ShardFileMissing) {
  write_shards();
  fs::remove(dir_.file(kShard2));
  expect_load_error({index_path(), std::string("'") + kShard2 + "'", "not found"});
}

TEST_F(ShardedCheckpoint, TensorInTwoShards) {
  // The index maps D to the second shard, and both shards contain it.
  const std::string name = "backbone.layers.1.mixer.D";
  shard1_.push_back(*find_raw(shard2_, name));
  write_shards();
  expect_load_error({"'" + name + "'", "more than one shard", kShard1, kShard2});
}

TEST_F(ShardedCheckpoint, TensorInTwoShardsIndexedToFirst) {
  const std::string name = "backbone.layers.1.mixer.D";
  shard1_.push_back(*find_raw(shard2_, name));
  weight_map_[name] = kShard1;
  write_shards();
  expect_load_error({"'" + name + "'", "more than one shard", kShard1, kShard2});
}

TEST_F(ShardedCheckpoint, IndexListsTensorShardLacks) {
  std::erase_if(shard2_, [](const RawTensor& t) { return t.name == "backbone.norm_f.weight"; });
  write_shards();
  expect_load_error({index_path(), "'backbone.norm_f.weight'", kShard2});
}

TEST_F(ShardedCheckpoint, MalformedIndex) {
  write_shards();
  write_bytes(index_path(), R"({"weight_map": {"backbone.norm_f.weight": )");
  expect_load_error({index_path(), "invalid JSON"});

  write_bytes(index_path(), R"({"weight_map": ["model-00001-of-00002.safetensors"]})");
  expect_load_error({index_path(), "weight_map"});

  write_bytes(index_path(), R"({"weight_map": {"backbone.norm_f.weight": "../model.safetensors"}})");
  expect_load_error({index_path(), "'backbone.norm_f.weight'", "../model.safetensors"});
}

TEST_F(ShardedCheckpoint, TruncatedShard) {
  write_shards();
  std::string bytes = read_bytes(dir_.file(kShard2));
  write_bytes(dir_.file(kShard2), bytes.substr(0, bytes.size() - 4));
  expect_load_error({dir_.file(kShard2), "data_offsets"});
}

// Half-precision checkpoints. The test rounds the f32 weights itself, to nearest with
// ties to even, so the conversion under test is not also the one that makes its input.

// Returns the bits of the IEEE binary16 value nearest to `value` (|value| < 65504).
uint16_t round_to_f16(float value) {
  uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  double magnitude = std::fabs(static_cast<double>(value));
  if (magnitude < std::ldexp(1.0, -14)) {
    // Subnormal: a multiple of 2^-24. nearbyint rounds half to even in the default mode;
    // 1024 carries into the smallest normal, whose encoding is also 1024.
    return sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(magnitude, 24)));
  }
  int exponent;
  std::frexp(magnitude, &exponent);  // magnitude = m * 2^exponent, m in [0.5, 1)
  // 11 significant bits: the significand as an integer in [1024, 2048].
  auto significand = static_cast<uint32_t>(std::nearbyint(std::ldexp(magnitude, 11 - exponent)));
  uint32_t biased = static_cast<uint32_t>(exponent - 1 + 15);
  // Adding (significand - 1024) lets a rounded-up 2048 carry into the exponent.
  return sign | static_cast<uint16_t>((biased << 10) + (significand - 1024));
}

// Returns the top 16 bits of the f32 nearest to `value` with 8 significant bits (bf16).
uint16_t round_to_bf16(float value) {
  if (value == 0.0f) return std::signbit(value) ? 0x8000 : 0;
  int exponent;
  std::frexp(static_cast<double>(value), &exponent);
  double rounded = std::ldexp(std::nearbyint(std::ldexp(static_cast<double>(value), 8 - exponent)),
                              exponent - 8);
  float as_float = static_cast<float>(rounded);  // exact: 8 significant bits
  uint32_t bits;
  std::memcpy(&bits, &as_float, 4);
  EXPECT_EQ(bits & 0xffff, 0u);
  return static_cast<uint16_t>(bits >> 16);
}

TEST(HalfPrecisionRounding, KnownValues) {
  // Hand-derived encodings, to trust the converters below before using them.
  EXPECT_EQ(round_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(round_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(round_to_f16(0.1f), 0x2e66);             // 0.0999755859375
  EXPECT_EQ(round_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // a tie rounds to even
  EXPECT_EQ(round_to_f16(1.0f + 3.0f / 2048), 0x3c02);  // a tie rounds to even
  EXPECT_EQ(round_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(round_to_f16(std::ldexp(1023.0f, -24)), 0x03ff);
  EXPECT_EQ(round_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(round_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(round_to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(round_to_bf16(0.1f), 0x3dcd);              // 0.10009765625
  EXPECT_EQ(round_to_bf16(1.0f + 1.0f / 256), 0x3f80);  // a tie rounds to even
  EXPECT_EQ(round_to_bf16(1.0f + 3.0f / 256), 0x3f82);
}

// Rewrites every tensor of `tensors` (all F32) as `dtype` ("F16" or "BF16").
void convert_to_half(std::vector<RawTensor>& tensors, const std::string& dtype) {
  for (RawTensor& t : tensors) {
    ASSERT_EQ(t.dtype, "F32") << t.name;
    size_t n = t.bytes.size() / 4;
    std::string half(n * 2, '\0');
    for (size_t i = 0; i < n; ++i) {
      float value;
      std::memcpy(&value, t.bytes.data() + 4 * i, 4);
      uint16_t bits = dtype == "F16" ? round_to_f16(value) : round_to_bf16(value);
      std::memcpy(half.data() + 2 * i, &bits, 2);
    }
    t.dtype = dtype;
    t.bytes = std::move(half);
  }
}

double max_abs(const std::vector<float>& values) {
  double out = 0.0;
  for (float v : values) out = std::max(out, static_cast<double>(std::fabs(v)));
  return out;
}

// Rounding each weight to a format with p significant bits changes it by a relative
// error of at most u = 2^-p. The logits are sums of products of such weights with
// activations that carry the same relative error forward through two layers, so each
// logit moves by a small multiple of u times the logits' magnitude. The bound below is
// 4 u max|logit|; a dtype read as the wrong format or a wrong rounding misses it by
// orders of magnitude.
void expect_half_checkpoint_close(const std::string& dir, const std::string& dtype,
                                  int significant_bits) {
  auto model = Model::load(dir);
  EXPECT_EQ(model->matrix_dtype_name(), dtype);
  GoldenSequence seq = golden_sequence();
  std::vector<float> logits = all_logits(*model, seq.ids);

  const double u = std::ldexp(1.0, -significant_bits);
  const double bound = 4 * u * max_abs(seq.logits);
  double worst = 0.0;
  for (size_t i = 0; i < seq.logits.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(logits[i]) - seq.logits[i]));
  EXPECT_LE(worst, bound) << dtype << " logits differ from the f32 golden logits by up to "
                          << worst << " (max |logit| " << max_abs(seq.logits) << ")";
  // Rounding must have changed something, or the checkpoint was not half precision.
  EXPECT_GT(worst, 0.0);
  std::printf("%s checkpoint: max |logit - golden| = %.3g, bound %.3g\n", dtype.c_str(), worst,
              bound);
}

TEST_F(CheckpointLoad, Float16WeightsCloseToGolden) {
  convert_to_half(tensors_, "F16");
  write_weights();
  expect_half_checkpoint_close(dir(), "F16", 11);
}

TEST_F(CheckpointLoad, BFloat16WeightsCloseToGolden) {
  convert_to_half(tensors_, "BF16");
  write_weights();
  expect_half_checkpoint_close(dir(), "BF16", 8);
}

}  // namespace
}  // namespace mambacpp::testing
