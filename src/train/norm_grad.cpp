// Forward and backward of the RMSNorm and the Mamba-2 gated RMSNorm. Input gradients
// are overwritten; weight gradients accumulate. Rows are split over the pool, and each
// thread sums its own weight gradient before one ordered reduction, so results do not
// depend on timing.
#include "train/norm_grad.h"

#include <cmath>
#include <vector>

#include "ops/activations.h"

namespace mambacpp::train {

namespace {

// Runs fn(m0, m1, dw_part) on row slices with a zeroed [D] buffer per slice, then adds
// the buffers into dw in slice order.
template <typename Fn>
void for_rows_with_weight_grad(int64_t M, int64_t D, float* dw, ThreadPool& pool, Fn fn) {
  const int64_t n_parts = pool.size();
  const int64_t grain = (M + n_parts - 1) / n_parts;
  std::vector<std::vector<float>> parts(static_cast<size_t>(n_parts));
  pool.parallel_for(M, grain > 0 ? grain : 1, [&](int64_t m0, int64_t m1) {
    std::vector<float>& part = parts[static_cast<size_t>(m0 / grain)];
    part.assign(static_cast<size_t>(D), 0.0f);
    fn(m0, m1, part.data());
  });

  for (const std::vector<float>& part : parts) {
    for (size_t i = 0; i < part.size(); ++i) dw[i] += part[i];
  }
}

// Given the gradient g of a normalized row xhat = x · rstd, returns d/dx in dx:
// rstd · (g − xhat · mean(g ⊙ xhat)).
void normalize_backward(const float* x, float rstd, const float* g, int64_t n, float* dx) {
  double dot = 0.0;
  for (int64_t i = 0; i < n; ++i) dot += static_cast<double>(g[i]) * x[i] * rstd;
  const float mean = static_cast<float>(dot / static_cast<double>(n));
  for (int64_t i = 0; i < n; ++i) dx[i] = rstd * (g[i] - x[i] * rstd * mean);
}

float reciprocal_rms(const float* x, int64_t n, double eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
}

}  // namespace

void rms_norm_forward(const float* x, int64_t M, int64_t D, const float* w, double eps, float* y,
                      float* rstd, ThreadPool& pool) {
  pool.parallel_for(M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* xr = x + m * D;
      float r = reciprocal_rms(xr, D, eps);
      rstd[m] = r;
      for (int64_t i = 0; i < D; ++i) y[m * D + i] = xr[i] * r * w[i];
    }
  });
}

void rms_norm_backward(const float* x, const float* rstd, const float* dy, int64_t M, int64_t D,
                       const float* w, float* dx, float* dw, ThreadPool& pool) {
  for_rows_with_weight_grad(M, D, dw, pool, [&](int64_t m0, int64_t m1, float* dw_part) {
    std::vector<float> g(static_cast<size_t>(D));
    for (int64_t m = m0; m < m1; ++m) {
      const float* xr = x + m * D;
      const float* dyr = dy + m * D;
      for (int64_t i = 0; i < D; ++i) {
        g[i] = dyr[i] * w[i];
        dw_part[i] += dyr[i] * xr[i] * rstd[m];
      }
      normalize_backward(xr, rstd[m], g.data(), D, dx + m * D);
    }
  });
}

void gated_rms_norm_forward(const float* y, const float* z, int64_t M, int64_t D,
                            int64_t group_size, const float* w, double eps, float* out,
                            float* rstd, ThreadPool& pool) {
  const int64_t n_groups = D / group_size;
  pool.parallel_for(M, 1, [&](int64_t m0, int64_t m1) {
    std::vector<float> v(static_cast<size_t>(D));
    for (int64_t m = m0; m < m1; ++m) {
      for (int64_t i = 0; i < D; ++i) v[i] = y[m * D + i] * silu(z[m * D + i]);

      for (int64_t g = 0; g < n_groups; ++g) {
        const int64_t c0 = g * group_size;
        float r = reciprocal_rms(v.data() + c0, group_size, eps);
        rstd[m * n_groups + g] = r;
        for (int64_t i = c0; i < c0 + group_size; ++i) out[m * D + i] = v[i] * r * w[i];
      }
    }
  });
}

void gated_rms_norm_backward(const float* y, const float* z, const float* rstd, const float* dout,
                             int64_t M, int64_t D, int64_t group_size, const float* w, float* dy,
                             float* dz, float* dw, ThreadPool& pool) {
  const int64_t n_groups = D / group_size;
  for_rows_with_weight_grad(M, D, dw, pool, [&](int64_t m0, int64_t m1, float* dw_part) {
    std::vector<float> v(static_cast<size_t>(D)), g(static_cast<size_t>(D)),
        dv(static_cast<size_t>(D));
    for (int64_t m = m0; m < m1; ++m) {
      const float* yr = y + m * D;
      const float* zr = z + m * D;
      const float* dr = dout + m * D;
      for (int64_t i = 0; i < D; ++i) v[i] = yr[i] * silu(zr[i]);

      // Through the per-group normalization to dv.
      for (int64_t grp = 0; grp < n_groups; ++grp) {
        const int64_t c0 = grp * group_size;
        const float r = rstd[m * n_groups + grp];
        for (int64_t i = c0; i < c0 + group_size; ++i) {
          g[i] = dr[i] * w[i];
          dw_part[i] += dr[i] * v[i] * r;
        }
        normalize_backward(v.data() + c0, r, g.data() + c0, group_size, dv.data() + c0);
      }

      // Through the gate v = y ⊙ silu(z).
      for (int64_t i = 0; i < D; ++i) {
        dy[m * D + i] = dv[i] * silu(zr[i]);
        dz[m * D + i] = dv[i] * yr[i] * silu_derivative(zr[i]);
      }
    }
  });
}

}  // namespace mambacpp::train
