#include "model/weight_table.h"

#include <cstring>
#include <set>

#include "mambacpp/error.h"

namespace mambacpp {

namespace {

std::optional<DType> requested_dtype(WeightDType d) {
  switch (d) {
    case WeightDType::F32: return DType::F32;
    case WeightDType::BF16: return DType::BF16;
    case WeightDType::F16: return DType::F16;
    case WeightDType::AsStored: break;
  }
  return std::nullopt;
}

float element_as_f32(const unsigned char* data, DType dtype, int64_t i) {
  uint16_t h;
  float f;
  switch (dtype) {
    case DType::F32: std::memcpy(&f, data + 4 * i, 4); return f;
    case DType::BF16: std::memcpy(&h, data + 2 * i, 2); return bf16_to_f32(h);
    case DType::F16: std::memcpy(&h, data + 2 * i, 2); return f16_to_f32(h);
    default: break;
  }
  MAMBACPP_CHECK(false && "weight dtype must be F32, F16 or BF16");
}

void convert(const TensorEntry& t, DType to, unsigned char* out) {
  int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    float v = element_as_f32(t.data, t.dtype, i);
    if (to == DType::F32) {
      std::memcpy(out + 4 * i, &v, 4);
    } else {
      uint16_t h = to == DType::BF16 ? f32_to_bf16(v) : f32_to_f16(v);
      std::memcpy(out + 2 * i, &h, 2);
    }
  }
}

bool is_weight_dtype(DType d) { return d == DType::F32 || d == DType::F16 || d == DType::BF16; }

}  // namespace

unsigned char* WeightStorage::allocate(size_t n_bytes) {
  buffers.push_back(std::make_unique<std::vector<unsigned char>>(n_bytes));
  return buffers.back()->data();
}

void WeightTable::add_matrix(const std::string& name, std::vector<int64_t> shape, Matrix* out,
                             std::vector<std::string> aliases) {
  specs_.push_back({name, std::move(aliases), std::move(shape), out, nullptr, false});
}

void WeightTable::add_values(const std::string& name, std::vector<int64_t> shape,
                             std::vector<float>* out, std::vector<std::string> aliases) {
  specs_.push_back({name, std::move(aliases), std::move(shape), nullptr, out, false});
}

void WeightTable::allow_unused(const std::string& name, std::vector<int64_t> shape) {
  specs_.push_back({name, {}, std::move(shape), nullptr, nullptr, true});
}

void WeightTable::bind(const CheckpointFiles& files, const LoadOptions& options,
                       WeightStorage& storage) const {
  std::set<std::string> used;

  for (const Spec& spec : specs_) {
    const TensorEntry* t = files.find(spec.name);
    for (size_t i = 0; t == nullptr && i < spec.aliases.size(); ++i) t = files.find(spec.aliases[i]);
    if (t == nullptr) {
      if (spec.unused) continue;
      throw Error(files.description() + ": tensor '" + spec.name + "' not found (expected shape " +
                  shape_to_string(spec.shape) + ")");
    }
    used.insert(t->name);

    if (t->shape != spec.shape)
      throw Error(t->file + ": tensor '" + t->name + "' has shape " + shape_to_string(t->shape) +
                  ", expected " + shape_to_string(spec.shape) + " from config.json");
    if (!is_weight_dtype(t->dtype))
      throw Error(t->file + ": tensor '" + t->name + "' has dtype " + dtype_name(t->dtype) +
                  "; weights must be F32, F16 or BF16");
    if (spec.unused) continue;

    if (spec.values != nullptr) {
      spec.values->resize(static_cast<size_t>(t->numel()));
      convert(*t, DType::F32, reinterpret_cast<unsigned char*>(spec.values->data()));
      continue;
    }

    Matrix& m = *spec.matrix;
    m.rows = spec.shape[0];
    m.cols = t->numel() / std::max<int64_t>(1, m.rows);
    DType target = requested_dtype(options.matrix_dtype).value_or(t->dtype);
    bool aligned = reinterpret_cast<uintptr_t>(t->data) % dtype_size(t->dtype) == 0;
    if (target == t->dtype && aligned) {
      m.data = t->data;
      m.dtype = t->dtype;
    } else {
      unsigned char* buffer = storage.allocate(static_cast<size_t>(t->numel()) * dtype_size(target));
      convert(*t, target, buffer);
      m.data = buffer;
      m.dtype = target;
    }
  }

  for (const TensorEntry* t : files.all())
    if (!used.count(t->name))
      throw Error(t->file + ": unexpected tensor '" + t->name + "' (shape " +
                  shape_to_string(t->shape) + ") that config.json does not call for");
}

}  // namespace mambacpp
