// Converting weight matrices to bf16/f16, by `convert` or at load time.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/safetensors.h"
#include "mambacpp/model.h"
#include "model/convert_checkpoint.h"
#include "support/golden_file.h"

namespace mambacpp {
namespace {

using testing::read_floats;
using testing::read_ids;
using testing::test_data;

class ConvertCheckpoint : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    input_ = test_data(std::string("golden/") + GetParam());
    output_ = (std::filesystem::temp_directory_path() /
               ("mambacpp_convert_" + std::to_string(::getpid()) + "_" + GetParam()))
                  .string();
  }
  void TearDown() override { std::filesystem::remove_all(output_); }

  std::vector<float> logits(const Model& model, const std::vector<int32_t>& ids) {
    State state = model.new_state();
    std::vector<float> out(ids.size() * model.config().padded_vocab_size);
    model.forward(ids, state, LogitsFor::All, out.data(), pool_);
    return out;
  }

  std::string input_, output_;
  ThreadPool pool_{2};
};

TEST_P(ConvertCheckpoint, MatricesBecomeBf16AndTheRestStays) {
  convert_checkpoint(input_, output_, DType::BF16);
  SafetensorsFile converted(output_ + "/model.safetensors");
  int matrices = 0;
  for (const TensorEntry& t : converted.tensors()) {
    bool matrix = t.name.find("_proj.weight") != std::string::npos ||
                  t.name.find("embedding") != std::string::npos || t.name.find("fc") != std::string::npos;
    EXPECT_EQ(t.dtype, matrix ? DType::BF16 : DType::F32) << t.name;
    matrices += matrix;
  }
  EXPECT_GT(matrices, 2);
  EXPECT_TRUE(std::filesystem::exists(output_ + "/config.json"));
}

// Rounding at load and rounding in the file are the same round-to-nearest-even, so both
// paths give the same logits bit for bit.
TEST_P(ConvertCheckpoint, ConvertedFileEqualsConversionAtLoad) {
  convert_checkpoint(input_, output_, DType::BF16);
  auto from_file = Model::load(output_);
  LoadOptions options;
  options.matrix_dtype = WeightDType::BF16;
  auto at_load = Model::load(input_, options);
  EXPECT_EQ(from_file->matrix_dtype_name(), "BF16");

  std::vector<int32_t> ids = {5, 17, 250, 3, 99, 100, 7};
  EXPECT_EQ(logits(*from_file, ids), logits(*at_load, ids));
}

// bf16 keeps 8 significant bits (relative rounding error up to 2^-9 = 0.2% per weight)
// and f16 keeps 11 (2^-12). The golden logits are O(1), so with independent rounding errors
// over fan-ins of 64-256 the logits move by a few 1e-3 for bf16 and a few 1e-4 for f16
// (measured: at most 3.4e-3 and 4.2e-4, and 4.9e-3 for bf16 on the AMX set, which also
// rounds the inputs of each product to bf16). The bounds 1e-2 and 1.5e-3 leave a factor of two
// to three and still catch a wrong conversion (wrong rounding or byte order moves them by
// O(1)).
TEST_P(ConvertCheckpoint, LowPrecisionLogitsStayNearGolden) {
  SafetensorsFile golden(input_ + "/golden.safetensors");
  std::vector<int32_t> ids = read_ids(golden, "seq3.input_ids");
  std::vector<float> expected = read_floats(golden, "seq3.logits");
  for (auto [dtype, tolerance] : {std::pair{WeightDType::BF16, 1e-2}, std::pair{WeightDType::F16, 1.5e-3}}) {
    LoadOptions options;
    options.matrix_dtype = dtype;
    auto model = Model::load(input_, options);
    double worst = testing::expect_close(logits(*model, ids), expected, tolerance, 0,
                                         dtype == WeightDType::BF16 ? "bf16 logits" : "f16 logits");
    std::printf("%s %s worst |diff| vs f32 golden: %.3g\n", GetParam(),
                dtype == WeightDType::BF16 ? "bf16" : "f16", worst);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ConvertCheckpoint,
                         ::testing::Values("mamba1_tiny", "mamba2_tiny", "hybrid_attn"));

}  // namespace
}  // namespace mambacpp
