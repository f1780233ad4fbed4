#include "train/train_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "io/safetensors.h"
#include "mambacpp/error.h"

namespace mambacpp::train {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kFormatVersion = 1;

json options_to_json(const TrainOptions& o) {
  return json{{"steps", o.steps},
              {"batch", o.batch},
              {"ctx", o.ctx},
              {"grad_accum", o.grad_accum},
              {"lr", o.lr},
              {"min_lr", o.min_lr},
              {"warmup", o.warmup},
              {"weight_decay", o.weight_decay},
              {"beta1", o.beta1},
              {"beta2", o.beta2},
              {"eps", o.eps},
              {"clip", o.clip},
              {"validation_fraction", o.validation_fraction},
              {"eval_every", o.eval_every},
              {"eval_batches", o.eval_batches},
              {"save_every", o.save_every},
              {"log_every", o.log_every},
              {"seed", o.seed},
              {"threads", o.threads}};
}

// Reads `object`[key] into `value`, which must have the JSON type of T.
template <typename T>
void read_field(const json& object, const char* key, const std::string& path, T& value) {
  auto it = object.find(key);
  if (it == object.end()) throw Error(path + ": missing field '" + key + "'");
  bool ok = false;
  if constexpr (std::is_floating_point_v<T>) {
    ok = it->is_number();
  } else if constexpr (std::is_unsigned_v<T>) {
    ok = it->is_number_unsigned();
  } else {
    ok = it->is_number_integer();
  }
  if (!ok) throw Error(path + ": field '" + std::string(key) + "' has the wrong type: " + it->dump());
  value = it->get<T>();
}

TrainOptions options_from_json(const json& j, const std::string& path) {
  if (!j.is_object()) throw Error(path + ": field 'options' must be an object");
  TrainOptions o;
  read_field(j, "steps", path, o.steps);
  read_field(j, "batch", path, o.batch);
  read_field(j, "ctx", path, o.ctx);
  read_field(j, "grad_accum", path, o.grad_accum);
  read_field(j, "lr", path, o.lr);
  read_field(j, "min_lr", path, o.min_lr);
  read_field(j, "warmup", path, o.warmup);
  read_field(j, "weight_decay", path, o.weight_decay);
  read_field(j, "beta1", path, o.beta1);
  read_field(j, "beta2", path, o.beta2);
  read_field(j, "eps", path, o.eps);
  read_field(j, "clip", path, o.clip);
  read_field(j, "validation_fraction", path, o.validation_fraction);
  read_field(j, "eval_every", path, o.eval_every);
  read_field(j, "eval_batches", path, o.eval_batches);
  read_field(j, "save_every", path, o.save_every);
  read_field(j, "log_every", path, o.log_every);
  read_field(j, "seed", path, o.seed);
  read_field(j, "threads", path, o.threads);
  return o;
}

uint64_t fnv1a(const void* data, size_t n_bytes, uint64_t hash = 0xcbf29ce484222325ULL) {
  const unsigned char* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n_bytes; ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

uint64_t fingerprint_tokens(const std::vector<int32_t>& tokens) {
  return fnv1a(tokens.data(), tokens.size() * sizeof(int32_t));
}

uint64_t fingerprint_parameters(const std::vector<Parameter>& parameters) {
  uint64_t hash = fnv1a(nullptr, 0);
  for (const Parameter& p : parameters) hash = fnv1a(p.value.data(), p.value.size() * sizeof(float), hash);
  return hash;
}

void save_train_state(const std::string& dir, const TrainOptions& options,
                      const TrainProgress& progress, const AdamW& optimizer,
                      const std::vector<Parameter>& parameters) {
  MAMBACPP_CHECK(parameters.size() == optimizer.exp_avg().size());
  std::vector<TensorToWrite> tensors;
  for (size_t i = 0; i < parameters.size(); ++i) {
    tensors.push_back({"exp_avg." + parameters[i].name, DType::F32, parameters[i].shape,
                       optimizer.exp_avg()[i].data()});
    tensors.push_back({"exp_avg_sq." + parameters[i].name, DType::F32, parameters[i].shape,
                       optimizer.exp_avg_sq()[i].data()});
  }
  write_safetensors((fs::path(dir) / kOptimizerStateFile).string(), tensors);

  json state{{"format_version", kFormatVersion},
             {"step", progress.step},
             {"optimizer_steps", optimizer.step_count()},
             {"data_tokens", progress.data_tokens},
             {"data_fingerprint", progress.data_fingerprint},
             {"weights_fingerprint", progress.weights_fingerprint},
             {"data_files", progress.data_files},
             {"options", options_to_json(options)}};
  const std::string path = (fs::path(dir) / kTrainStateFile).string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << state.dump(2) << "\n";
  out.close();
  if (!out) throw Error("failed to write " + path);
}

SavedTrainState read_train_state(const std::string& dir) {
  const std::string path = (fs::path(dir) / kTrainStateFile).string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + " not found. Only a directory saved by 'mambacpp train' can be resumed");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_train_state(text, path);
}

SavedTrainState parse_train_state(const std::string& text, const std::string& path) {
  json state = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (state.is_discarded() || !state.is_object()) throw Error(path + ": not a JSON object");

  int format_version = 0;
  read_field(state, "format_version", path, format_version);
  if (format_version != kFormatVersion)
    throw Error(path + ": format_version " + std::to_string(format_version) + " is not supported (expected " +
                std::to_string(kFormatVersion) + ")");

  SavedTrainState saved;
  read_field(state, "step", path, saved.progress.step);
  read_field(state, "optimizer_steps", path, saved.optimizer_steps);
  read_field(state, "data_tokens", path, saved.progress.data_tokens);
  read_field(state, "data_fingerprint", path, saved.progress.data_fingerprint);
  read_field(state, "weights_fingerprint", path, saved.progress.weights_fingerprint);
  auto files = state.find("data_files");
  if (files == state.end() || !files->is_array()) throw Error(path + ": field 'data_files' must be an array");
  for (const json& file : *files) {
    if (!file.is_string()) throw Error(path + ": field 'data_files' must contain strings");
    saved.progress.data_files.push_back(file.get<std::string>());
  }
  auto options = state.find("options");
  if (options == state.end()) throw Error(path + ": missing field 'options'");
  saved.options = options_from_json(*options, path);
  if (saved.progress.step < 0 || saved.optimizer_steps < 0)
    throw Error(path + ": 'step' and 'optimizer_steps' must be 0 or more");
  return saved;
}

void load_optimizer_state(const std::string& dir, int64_t optimizer_steps,
                          const std::vector<Parameter>& parameters, AdamW& optimizer) {
  MAMBACPP_CHECK(parameters.size() == optimizer.exp_avg().size());
  SafetensorsFile file((fs::path(dir) / kOptimizerStateFile).string());
  std::set<std::string> expected;

  auto load_moment = [&](const std::string& name, const Parameter& p, std::vector<float>& moment) {
    expected.insert(name);
    const TensorEntry& entry = file.get(name);
    if (entry.dtype != DType::F32)
      throw Error(file.path() + ": tensor '" + name + "' has dtype " + dtype_name(entry.dtype) + ", expected F32");
    if (entry.shape != p.shape)
      throw Error(file.path() + ": tensor '" + name + "' has shape " + shape_to_string(entry.shape) +
                  ", but parameter '" + p.name + "' has shape " + shape_to_string(p.shape));
    MAMBACPP_CHECK(moment.size() * sizeof(float) == entry.n_bytes);
    std::memcpy(moment.data(), entry.data, entry.n_bytes);
  };
  for (size_t i = 0; i < parameters.size(); ++i) {
    load_moment("exp_avg." + parameters[i].name, parameters[i], optimizer.exp_avg()[i]);
    load_moment("exp_avg_sq." + parameters[i].name, parameters[i], optimizer.exp_avg_sq()[i]);
  }
  for (const TensorEntry& entry : file.tensors())
    if (!expected.count(entry.name))
      throw Error(file.path() + ": tensor '" + entry.name + "' matches no parameter of the model");
  optimizer.set_step_count(optimizer_steps);
}

}  // namespace mambacpp::train
