#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/mapped_file.h"
#include "ops/dtype.h"

namespace mambacpp {

// One tensor entry of a safetensors file; `data` points into the file's mapping.
struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const unsigned char* data = nullptr;
  size_t n_bytes = 0;
  std::string file;  // path of the file that contains it, for messages

  int64_t numel() const;
};

// Parses a safetensors header from `bytes` (the whole file). Every check a hostile file
// could fail is done here. The header length must fit the file and the header must be a
// JSON object. Each entry needs a known dtype, a non-negative shape and data_offsets
// inside the data section whose size equals numel * dtype size, and no two entries may
// overlap. Throws Error naming `path` and the tensor on the first violation.
std::vector<TensorEntry> parse_safetensors(const unsigned char* bytes, size_t size,
                                           const std::string& path,
                                           std::map<std::string, std::string>* metadata = nullptr);

// A memory-mapped safetensors file.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_->path(); }
  // Returns the entry called `name`, or nullptr.
  const TensorEntry* find(std::string_view name) const;
  // Returns the entry called `name`; throws Error naming the file when it is absent.
  const TensorEntry& get(std::string_view name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  std::vector<TensorEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Tensor data to write: `data` points to numel * dtype_size(dtype) bytes.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes tensors (in the given order) to a safetensors file at `path`.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Returns "[a, b, c]" for messages.
std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace mambacpp
