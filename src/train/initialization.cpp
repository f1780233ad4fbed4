#include "train/initialization.h"

#include <cmath>

namespace mambacpp::train {

namespace {

void fill_uniform(std::vector<float>& values, double low, double high, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(low, high);
  for (float& v : values) v = static_cast<float>(dist(rng));
}

// fan_in of a weight [out, in, k...] as PyTorch computes it: the product of all
// dimensions after the first.
double fan_in(const std::vector<int64_t>& shape) {
  double n = 1.0;
  for (size_t i = 1; i < shape.size(); ++i) n *= static_cast<double>(shape[i]);
  return n;
}

// softplus^-1 of a time step drawn log-uniformly from [1e-3, 0.1] and clamped at 1e-4.
float dt_bias_value(std::mt19937_64& rng) {
  std::uniform_real_distribution<double> dist(std::log(1e-3), std::log(0.1));
  double dt = std::max(std::exp(dist(rng)), 1e-4);
  return static_cast<float>(dt + std::log(-std::expm1(-dt)));
}

}  // namespace

void initialize_values(const ParameterSpec& spec, const ModelConfig& config, std::mt19937_64& rng,
                       std::vector<float>& values) {
  int64_t numel = 1;
  for (int64_t d : spec.shape) numel *= d;
  values.assign(static_cast<size_t>(numel), 0.0f);

  switch (spec.init) {
    case InitRule::Normal002: {
      std::normal_distribution<double> dist(0.0, 0.02);
      for (float& v : values) v = static_cast<float>(dist(rng));
      break;
    }
    case InitRule::KaimingUniform: {
      // kaiming_uniform_ with a = sqrt(5) gives the bound sqrt(1 / fan_in).
      double bound = 1.0 / std::sqrt(fan_in(spec.shape));
      fill_uniform(values, -bound, bound, rng);
      break;
    }
    case InitRule::ResidualOut: {
      double bound = 1.0 / std::sqrt(fan_in(spec.shape));
      fill_uniform(values, -bound, bound, rng);
      const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(config.n_layer)));
      for (float& v : values) v *= scale;
      break;
    }
    case InitRule::ConvBias: {
      double bound = 1.0 / std::sqrt(static_cast<double>(config.d_conv));
      fill_uniform(values, -bound, bound, rng);
      break;
    }
    case InitRule::Zeros:
      break;
    case InitRule::Ones:
      for (float& v : values) v = 1.0f;
      break;
    case InitRule::DtProjWeight: {
      double bound = 1.0 / std::sqrt(static_cast<double>(config.dt_rank));
      fill_uniform(values, -bound, bound, rng);
      break;
    }
    case InitRule::DtBias:
      for (float& v : values) v = dt_bias_value(rng);
      break;
    case InitRule::Mamba1ALog: {
      const int64_t N = spec.shape[1];
      for (int64_t i = 0; i < numel; ++i) values[i] = static_cast<float>(std::log((i % N) + 1.0));
      break;
    }
    case InitRule::Mamba2ALog: {
      std::uniform_real_distribution<double> dist(1.0, 16.0);
      for (float& v : values) v = static_cast<float>(std::log(dist(rng)));
      break;
    }
  }
}

}  // namespace mambacpp::train
