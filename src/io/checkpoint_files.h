#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors.h"

namespace mambacpp {

// The safetensors files of a checkpoint directory: `model.safetensors`, or the shards
// that `model.safetensors.index.json` names in its weight_map.
class CheckpointFiles {
 public:
  // Throws Error naming the directory or file when no weights file is found, a shard is
  // missing, the index is malformed, or one tensor name appears twice.
  static CheckpointFiles open(const std::string& dir);

  // Returns the tensor called `name` in any file, or nullptr.
  const TensorEntry* find(std::string_view name) const;
  // Every tensor of every file.
  std::vector<const TensorEntry*> all() const;
  // A path for messages about the checkpoint as a whole.
  const std::string& description() const { return description_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::string description_;
};

}  // namespace mambacpp
