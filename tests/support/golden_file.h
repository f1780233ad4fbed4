#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace mambacpp::testing {

inline std::string test_data(const std::string& relative) {
  return std::string(MAMBACPP_TEST_DATA_DIR) + "/" + relative;
}

// Returns a golden tensor's values as f32 (from F32 or F64).
inline std::vector<float> read_floats(const SafetensorsFile& file, const std::string& name) {
  const TensorEntry& t = file.get(name);
  std::vector<float> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (t.dtype == DType::F32) {
      std::memcpy(&out[i], t.data + 4 * i, 4);
    } else if (t.dtype == DType::F64) {
      double d;
      std::memcpy(&d, t.data + 8 * i, 8);
      out[i] = static_cast<float>(d);
    } else {
      ADD_FAILURE() << name << " is not a float tensor";
      return {};
    }
  }
  return out;
}

// Returns a golden I64 tensor's values as token ids.
inline std::vector<int32_t> read_ids(const SafetensorsFile& file, const std::string& name) {
  const TensorEntry& t = file.get(name);
  EXPECT_EQ(t.dtype, DType::I64) << name;
  std::vector<int32_t> out(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    int64_t v;
    std::memcpy(&v, t.data + 8 * i, 8);
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

// Checks |actual - expected| <= atol + rtol * |expected| everywhere; reports the first
// index that fails and returns the largest absolute difference.
inline double expect_close(const float* actual, const std::vector<float>& expected, double atol,
                           double rtol, const std::string& what) {
  double worst = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    double diff = std::abs(static_cast<double>(actual[i]) - expected[i]);
    if (!(diff <= atol + rtol * std::abs(expected[i]))) {
      ADD_FAILURE() << what << ": index " << i << " is " << actual[i] << ", expected "
                    << expected[i] << " (|diff| " << diff << ")";
      return diff;
    }
    worst = std::max(worst, diff);
  }
  return worst;
}

inline double expect_close(const std::vector<float>& actual, const std::vector<float>& expected,
                           double atol, double rtol, const std::string& what) {
  EXPECT_EQ(actual.size(), expected.size()) << what;
  if (actual.size() != expected.size()) return INFINITY;
  return expect_close(actual.data(), expected, atol, rtol, what);
}

}  // namespace mambacpp::testing
