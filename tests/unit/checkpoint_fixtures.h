// Helpers for tests that build bad checkpoints on disk: a temporary directory, safetensors
// bytes written by hand, and a check that an Error message names the file and the tensor
// or field. The bytes are written here, not by write_safetensors, so the writer under test
// does not make its own inputs.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mambacpp/error.h"

namespace mambacpp::testing {

namespace fs = std::filesystem;

// A fresh directory under the system temporary directory, removed with its contents
// when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "mambacpp_test_XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// Returns a safetensors file: the 8-byte little-endian header length, the header text as
// given, then the data section.
inline std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return out + header + data;
}

// One tensor of a checkpoint as raw bytes, for rebuilding a file with changes.
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// Reads every tensor of a (valid) safetensors file in header order of data offsets.
inline std::vector<RawTensor> read_raw_tensors(const std::string& path) {
  std::string file = read_bytes(path);
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(file[i]);
  auto header = nlohmann::json::parse(file.substr(8, length));
  const std::string data = file.substr(8 + length);

  std::vector<std::pair<uint64_t, RawTensor>> by_offset;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    uint64_t begin = info["data_offsets"][0], end = info["data_offsets"][1];
    RawTensor t{name, info["dtype"], info["shape"].get<std::vector<int64_t>>(),
                data.substr(begin, end - begin)};
    by_offset.emplace_back(begin, std::move(t));
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<RawTensor> out;
  for (auto& [offset, t] : by_offset) out.push_back(std::move(t));
  return out;
}

// Writes tensors back to back, in the given order, with contiguous data_offsets.
inline void write_raw_tensors(const std::string& path, const std::vector<RawTensor>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::string data;
  for (const RawTensor& t : tensors) {
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  write_bytes(path, safetensors_bytes(header.dump(), data));
}

inline RawTensor* find_raw(std::vector<RawTensor>& tensors, const std::string& name) {
  for (RawTensor& t : tensors)
    if (t.name == name) return &t;
  ADD_FAILURE() << "no tensor " << name;
  return nullptr;
}

// Copies config.json and model.safetensors of a model directory into `to`.
inline void copy_model(const std::string& from, const fs::path& to) {
  fs::copy_file(fs::path(from) / "config.json", to / "config.json",
                fs::copy_options::overwrite_existing);
  fs::copy_file(fs::path(from) / "model.safetensors", to / "model.safetensors",
                fs::copy_options::overwrite_existing);
}

// Runs `action`, expects it to throw mambacpp::Error, and checks that the message
// contains each of `parts` (the file, the tensor or field, the shapes).
inline void expect_error_naming(const std::function<void()>& action,
                                std::initializer_list<std::string> parts) {
  try {
    action();
  } catch (const Error& e) {
    std::string message = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(message.find(part), std::string::npos)
          << "the message does not contain \"" << part << "\": " << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << "the message is not one line: " << message;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected mambacpp::Error, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected mambacpp::Error, but nothing was thrown";
}

}  // namespace mambacpp::testing
