#pragma once

#include <string>

#include "mambacpp/model.h"
#include "mambacpp/state.h"

namespace mambacpp {

// State files hold one sequence's State so that generation can resume later without
// reading the earlier text again. Layout (little-endian):
//   bytes 0-7    magic "MAMBASTA"
//   bytes 8-11   u32 format version (kStateFileVersion)
//   bytes 12-15  u32 zero
//   bytes 16-23  u64 length H of the JSON header
//   H bytes      JSON: {"model": fingerprint, "n_tokens": N, "checksum": hex FNV-1a of the
//                data, "layers": [{"conv_state": n, "ssm_state": n, "kv_cache": n}, ...]}
//   data         each layer's conv_state, ssm_state and kv_cache as f32, in that order
constexpr uint32_t kStateFileVersion = 1;

// Writes `state` of `model` to `path` (through a temporary file renamed into place).
void save_state(const std::string& path, const Model& model, const State& state);

// Reads a state saved from the same model. Throws Error naming the file when it is
// missing, truncated, corrupt, of another format version, or from another model (by
// fingerprint or by shapes). Never writes to the file.
State load_state(const std::string& path, const Model& model);

}  // namespace mambacpp
