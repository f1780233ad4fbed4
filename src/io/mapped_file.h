#pragma once

#include <cstddef>
#include <string>

namespace mambacpp {

// A read-only memory mapping of a whole file. Weights are used in place from it when
// their stored dtype is the one the kernels read, so loading a model copies nothing.
class MappedFile {
 public:
  // Throws Error naming `path` when it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mambacpp
