#include "model/convert_checkpoint.h"

#include <cstring>
#include <filesystem>

#include "io/checkpoint_files.h"
#include "io/safetensors.h"
#include "mambacpp/error.h"
#include "mambacpp/model.h"

namespace mambacpp {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The tensors the weight table uses as matrices: the ones the matmul kernels read.
bool is_weight_matrix(const TensorEntry& t) {
  if (t.shape.size() != 2) return false;
  return ends_with(t.name, "_proj.weight") || ends_with(t.name, "embedding.weight") ||
         ends_with(t.name, "embeddings.weight") || t.name == "lm_head.weight" ||
         ends_with(t.name, "fc1.weight") || ends_with(t.name, "fc2.weight");
}

float read_element(const TensorEntry& t, int64_t i) {
  uint16_t h;
  float f;
  switch (t.dtype) {
    case DType::F32: std::memcpy(&f, t.data + 4 * i, 4); return f;
    case DType::BF16: std::memcpy(&h, t.data + 2 * i, 2); return bf16_to_f32(h);
    case DType::F16: std::memcpy(&h, t.data + 2 * i, 2); return f16_to_f32(h);
    default: break;
  }
  throw Error(t.file + ": tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) +
              ", which cannot be converted");
}

std::vector<unsigned char> converted(const TensorEntry& t, DType dtype) {
  const int64_t n = t.numel();
  std::vector<unsigned char> out(static_cast<size_t>(n) * dtype_size(dtype));
  for (int64_t i = 0; i < n; ++i) {
    float v = read_element(t, i);
    if (dtype == DType::F32) {
      std::memcpy(out.data() + 4 * i, &v, 4);
    } else {
      uint16_t h = dtype == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

}  // namespace

void convert_checkpoint(const std::string& input_dir, const std::string& output_dir, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::F16)
    throw Error(std::string("cannot convert weights to ") + dtype_name(dtype) + "; use F32, BF16 or F16");
  Model::load(input_dir);  // checks config and every tensor before anything is written

  std::error_code ec;
  fs::create_directories(output_dir, ec);
  if (ec) throw Error(output_dir + ": cannot create the output directory: " + ec.message());
  if (fs::equivalent(input_dir, output_dir, ec))
    throw Error(output_dir + ": the output directory must differ from the input directory");

  CheckpointFiles files = CheckpointFiles::open(input_dir);
  std::vector<std::vector<unsigned char>> buffers;
  std::vector<TensorToWrite> tensors;
  for (const TensorEntry* t : files.all()) {
    if (is_weight_matrix(*t) && t->dtype != dtype) {
      buffers.push_back(converted(*t, dtype));
      tensors.push_back({t->name, dtype, t->shape, buffers.back().data()});
    } else {
      tensors.push_back({t->name, t->dtype, t->shape, t->data});
    }
  }
  write_safetensors((fs::path(output_dir) / "model.safetensors").string(), tensors,
                    {{"format", "pt"}, {"converted_by", "mambacpp convert"}});

  for (const char* name : {"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
    fs::path from = fs::path(input_dir) / name;
    if (!fs::exists(from)) continue;
    fs::copy_file(from, fs::path(output_dir) / name, fs::copy_options::overwrite_existing, ec);
    if (ec) throw Error((fs::path(output_dir) / name).string() + ": cannot copy: " + ec.message());
  }
}

}  // namespace mambacpp
