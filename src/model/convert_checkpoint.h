#pragma once

#include <string>

#include "ops/dtype.h"

namespace mambacpp {

// Writes a copy of the checkpoint in `input_dir` to `output_dir` with its weight matrices
// (embedding, LM head, the mixers' and MLPs' projections) stored as `dtype` (F32, BF16 or
// F16). Every other tensor (norms, biases, conv weights, A_log, D, dt_bias) stays as it
// was, because the reference keeps those in f32. config.json and the tokenizer files are copied. The
// input is loaded and checked first, so a checkpoint that would not load is not
// converted. Throws Error naming the file on any failure.
void convert_checkpoint(const std::string& input_dir, const std::string& output_dir, DType dtype);

}  // namespace mambacpp
