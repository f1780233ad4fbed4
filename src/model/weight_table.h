#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint_files.h"
#include "mambacpp/model.h"
#include "ops/matrix.h"

namespace mambacpp {

// Buffers for weights that could not be used from the file mapping as stored
// (converted dtype, misaligned data, small tensors widened to f32).
struct WeightStorage {
  std::vector<std::unique_ptr<std::vector<unsigned char>>> buffers;
  unsigned char* allocate(size_t n_bytes);
};

// Every tensor a model expects: its name in the state-spaces layout, its names in other
// layouts, its shape as computed from the config, and where the loader puts it. bind()
// checks the checkpoint against the table in one place: a missing, extra or mis-shaped
// tensor, or a weight dtype other than F32/F16/BF16, is an Error naming the file, the
// tensor, and the expected and actual shapes.
class WeightTable {
 public:
  // A weight matrix [rows, cols] used by the matmul kernels (mapped when possible).
  // `shape` may have trailing 1s beyond two dimensions, as conv weights do.
  void add_matrix(const std::string& name, std::vector<int64_t> shape, Matrix* out,
                  std::vector<std::string> aliases = {});
  // A tensor copied to f32 (norm weights, biases, conv weights, A_log, D).
  void add_values(const std::string& name, std::vector<int64_t> shape, std::vector<float>* out,
                  std::vector<std::string> aliases = {});
  // A tensor that may be present and is not used (lm_head.weight of a tied checkpoint).
  void allow_unused(const std::string& name, std::vector<int64_t> shape);

  void bind(const CheckpointFiles& files, const LoadOptions& options, WeightStorage& storage) const;

 private:
  struct Spec {
    std::string name;
    std::vector<std::string> aliases;
    std::vector<int64_t> shape;
    Matrix* matrix = nullptr;
    std::vector<float>* values = nullptr;
    bool unused = false;
  };
  std::vector<Spec> specs_;
};

}  // namespace mambacpp
