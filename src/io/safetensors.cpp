#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "mambacpp/error.h"

namespace mambacpp {

namespace {

// A header larger than this is not a weights file; the format's own readers cap it too.
constexpr uint64_t kMaxHeaderBytes = 100u * 1024u * 1024u;

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": invalid safetensors file: " + what);
}

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& path,
                      const std::string& name) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      fail(path, "tensor '" + name + "' has a shape whose size overflows");
    n *= d;
  }
  return n;
}

TensorEntry parse_entry(const std::string& name, const nlohmann::json& info,
                        const unsigned char* data_section, uint64_t data_size,
                        const std::string& path) {
  if (!info.is_object()) fail(path, "entry '" + name + "' is not a JSON object");

  TensorEntry entry;
  entry.name = name;
  entry.file = path;

  auto dtype_it = info.find("dtype");
  if (dtype_it == info.end() || !dtype_it->is_string())
    fail(path, "tensor '" + name + "' has no dtype string");
  auto dtype = dtype_from_name(dtype_it->get<std::string>());
  if (!dtype)
    fail(path, "tensor '" + name + "' has unknown dtype '" + dtype_it->get<std::string>() + "'");
  entry.dtype = *dtype;

  auto shape_it = info.find("shape");
  if (shape_it == info.end() || !shape_it->is_array())
    fail(path, "tensor '" + name + "' has no shape array");
  for (const auto& d : *shape_it) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0)
      fail(path, "tensor '" + name + "' has a shape entry that is not a non-negative integer");
    entry.shape.push_back(d.get<int64_t>());
  }

  auto offsets_it = info.find("data_offsets");
  if (offsets_it == info.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
    fail(path, "tensor '" + name + "' needs data_offsets [begin, end] of non-negative integers");
  uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end || end > data_size)
    fail(path, "tensor '" + name + "' has data_offsets [" + std::to_string(begin) + ", " +
                   std::to_string(end) + "] outside the data section of " +
                   std::to_string(data_size) + " bytes");

  int64_t numel = checked_numel(entry.shape, path, name);
  const uint64_t element_bytes = dtype_size(entry.dtype);
  if (static_cast<uint64_t>(numel) > std::numeric_limits<uint64_t>::max() / element_bytes)
    fail(path, "tensor '" + name + "' has a shape whose size in bytes overflows");
  uint64_t expected = static_cast<uint64_t>(numel) * element_bytes;
  if (end - begin != expected)
    fail(path, "tensor '" + name + "' of dtype " + dtype_name(entry.dtype) + " and shape " +
                   shape_to_string(entry.shape) + " needs " + std::to_string(expected) +
                   " bytes but data_offsets give " + std::to_string(end - begin));

  entry.data = data_section + begin;
  entry.n_bytes = end - begin;
  return entry;
}

void check_no_overlap(std::vector<TensorEntry>& tensors, const std::string& path) {
  std::vector<const TensorEntry*> by_offset;
  for (const auto& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorEntry* a, const TensorEntry* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorEntry* prev = by_offset[i - 1];
    if (prev->data + prev->n_bytes > by_offset[i]->data)
      fail(path, "tensors '" + prev->name + "' and '" + by_offset[i]->name +
                     "' have overlapping data_offsets");
  }
}

}  // namespace

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::vector<TensorEntry> parse_safetensors(const unsigned char* bytes, size_t size,
                                           const std::string& path,
                                           std::map<std::string, std::string>* metadata) {
  if (size < 8) fail(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = read_u64_le(bytes);
  if (header_len > size - 8)
    fail(path, "header length " + std::to_string(header_len) + " runs past the end of the file (" +
                   std::to_string(size) + " bytes)");
  if (header_len > kMaxHeaderBytes)
    fail(path, "header length " + std::to_string(header_len) + " is over the 100 MiB limit");

  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json header = nlohmann::json::parse(header_begin, header_begin + header_len,
                                                nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail(path, "header is not valid JSON");
  if (!header.is_object()) fail(path, "header is not a JSON object");

  const unsigned char* data_section = bytes + 8 + header_len;
  uint64_t data_size = size - 8 - header_len;

  std::vector<TensorEntry> tensors;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) fail(path, "__metadata__ value '" + key + "' is not a string");
        if (metadata) (*metadata)[key] = value.get<std::string>();
      }
      continue;
    }
    tensors.push_back(parse_entry(name, info, data_section, data_size, path));
  }

  check_no_overlap(tensors, path);
  return tensors;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_shared<MappedFile>(path)) {
  tensors_ = parse_safetensors(file_->data(), file_->size(), path, &metadata_);
}

const TensorEntry* SafetensorsFile::find(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

const TensorEntry& SafetensorsFile::get(std::string_view name) const {
  const TensorEntry* t = find(name);
  if (!t) throw Error(path() + ": tensor '" + std::string(name) + "' not found");
  return *t;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;

  uint64_t offset = 0;
  for (const auto& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    uint64_t n_bytes = static_cast<uint64_t>(numel) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + n_bytes}}};
    offset += n_bytes;
  }

  // Pad the header with spaces to a multiple of 8 so the data section is aligned.
  std::string header_text = header.dump();
  while ((header_text.size() + 8) % 8 != 0) header_text.push_back(' ');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing");
  unsigned char len_bytes[8];
  uint64_t len = header_text.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(len >> (8 * i));
  out.write(reinterpret_cast<const char*>(len_bytes), 8);
  out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
  for (const auto& t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    out.write(static_cast<const char*>(t.data),
              static_cast<std::streamsize>(static_cast<uint64_t>(numel) * dtype_size(t.dtype)));
  }
  if (!out) throw Error(path + ": write failed");
}

}  // namespace mambacpp
