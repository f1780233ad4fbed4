// A stand-in for LanguageModel with the same training interface: a quadratic objective
// over a few parameters whose minimum depends on the token ids, so the loss and the
// gradients change with every batch as a real model's do.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "mambacpp/thread_pool.h"
#include "train/parameter.h"

namespace mambacpp::testing {

class QuadraticModel {
 public:
  // Three parameters: a decayed matrix, a decayed vector and a vector without decay.
  static QuadraticModel initialize(uint64_t seed) {
    QuadraticModel model;
    model.add("w.weight", {3, 4}, true, seed);
    model.add("b.weight", {5}, true, seed + 1);
    model.add("norm.weight", {2}, false, seed + 2);
    return model;
  }

  static QuadraticModel load(const std::string& dir) {
    QuadraticModel model = initialize(0);
    SafetensorsFile file((std::filesystem::path(dir) / "model.safetensors").string());
    for (train::Parameter& p : model.parameters_) {
      const TensorEntry& entry = file.get(p.name);
      std::memcpy(p.value.data(), entry.data, entry.n_bytes);
    }
    return model;
  }

  // 0.5 * mean over rows b and tokens t of sum_j (p[j] - target(ids[b, t], j))^2 summed
  // over parameters, with target(id, j) = (id % 7) / 7 + 0.01 * j.
  double loss(const int32_t* ids, int64_t batch, int64_t seq_len, bool backward, ThreadPool&) {
    ++loss_calls;
    const double count = static_cast<double>(batch * seq_len);
    double total = 0;
    for (train::Parameter& p : parameters_) {
      for (size_t j = 0; j < p.value.size(); ++j) {
        double grad = 0;
        for (int64_t i = 0; i < batch * seq_len; ++i) {
          const double diff = p.value[j] - target(ids[i], static_cast<int64_t>(j));
          total += 0.5 * diff * diff / count;
          grad += diff / count;
        }
        if (backward) p.grad[j] += static_cast<float>(grad);
      }
    }
    return total;
  }

  void save(const std::string& dir) const {
    std::vector<TensorToWrite> tensors;
    for (const train::Parameter& p : parameters_) tensors.push_back({p.name, DType::F32, p.shape, p.value.data()});
    write_safetensors((std::filesystem::path(dir) / "model.safetensors").string(), tensors);
  }

  std::vector<train::Parameter>& parameters() { return parameters_; }
  const std::vector<train::Parameter>& parameters() const { return parameters_; }
  void zero_grad() {
    for (train::Parameter& p : parameters_) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
  }

  static double target(int32_t id, int64_t j) { return (id % 7) / 7.0 + 0.01 * static_cast<double>(j); }

  int64_t loss_calls = 0;

 private:
  void add(const std::string& name, std::vector<int64_t> shape, bool decay, uint64_t seed) {
    train::Parameter p;
    p.name = name;
    p.shape = shape;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    for (int64_t i = 0; i < n; ++i)
      p.value.push_back(static_cast<float>(((seed * 31 + static_cast<uint64_t>(i) * 17) % 13) / 13.0 - 0.5));
    p.grad.assign(static_cast<size_t>(n), 0.0f);
    p.weight_decay = decay;
    parameters_.push_back(std::move(p));
  }

  std::vector<train::Parameter> parameters_;
};

}  // namespace mambacpp::testing
