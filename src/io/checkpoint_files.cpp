#include "io/checkpoint_files.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "mambacpp/error.h"

namespace mambacpp {

namespace fs = std::filesystem;

namespace {

// Returns the shard file of each tensor named in a model.safetensors.index.json.
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) throw Error(index_path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();

  auto index = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded()) throw Error(index_path + ": invalid JSON");
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    throw Error(index_path + ": expected an object with a 'weight_map' object");

  std::map<std::string, std::string> weight_map;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string()) throw Error(index_path + ": weight_map entry '" + name + "' is not a file name");
    std::string shard = file.get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      throw Error(index_path + ": weight_map entry '" + name + "' names '" + shard +
                  "', which is not a file in the checkpoint directory");
    weight_map[name] = shard;
  }
  return weight_map;
}

// Throws Error naming both files when one tensor name appears in two of them.
void check_unique_names(const std::vector<const TensorEntry*>& tensors) {
  std::map<std::string, const std::string*> file_of;
  for (const TensorEntry* t : tensors) {
    auto [it, inserted] = file_of.emplace(t->name, &t->file);
    if (!inserted)
      throw Error(t->file + ": tensor '" + t->name + "' appears in more than one shard (also in " +
                  *it->second + ")");
  }
}

}  // namespace

CheckpointFiles CheckpointFiles::open(const std::string& dir) {
  CheckpointFiles files;
  fs::path single = fs::path(dir) / "model.safetensors";
  fs::path index = fs::path(dir) / "model.safetensors.index.json";

  if (fs::exists(single)) {
    files.files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
    files.description_ = single.string();
  } else if (fs::exists(index)) {
    auto weight_map = read_weight_map(index.string());
    std::set<std::string> shards;
    for (const auto& [name, shard] : weight_map) shards.insert(shard);
    for (const auto& shard : shards) {
      fs::path path = fs::path(dir) / shard;
      if (!fs::exists(path))
        throw Error(index.string() + ": shard '" + shard + "' not found in " + dir);
      files.files_.push_back(std::make_unique<SafetensorsFile>(path.string()));
    }
    files.description_ = index.string();
    // Before the weight_map check: with a name in two shards, find() may return the copy
    // in the shard the index does not name.
    check_unique_names(files.all());
    for (const auto& [name, shard] : weight_map) {
      const TensorEntry* entry = files.find(name);
      if (entry == nullptr || fs::path(entry->file).filename() != shard)
        throw Error(index.string() + ": tensor '" + name + "' is listed in shard '" + shard +
                    "' but that file does not contain it");
    }
  } else if (fs::exists(fs::path(dir) / "pytorch_model.bin")) {
    throw Error(dir + ": only pytorch_model.bin found; convert it to model.safetensors "
                      "(PyTorch pickle checkpoints are not supported)");
  } else {
    throw Error(dir + ": no model.safetensors or model.safetensors.index.json found");
  }

  return files;
}

const TensorEntry* CheckpointFiles::find(std::string_view name) const {
  for (const auto& f : files_)
    if (const TensorEntry* t = f->find(name)) return t;
  return nullptr;
}

std::vector<const TensorEntry*> CheckpointFiles::all() const {
  std::vector<const TensorEntry*> out;
  for (const auto& f : files_)
    for (const auto& t : f->tensors()) out.push_back(&t);
  return out;
}

}  // namespace mambacpp
