#include "runtime/state_file.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/mapped_file.h"
#include "mambacpp/error.h"

namespace mambacpp {

namespace {

constexpr char kMagic[8] = {'M', 'A', 'M', 'B', 'A', 'S', 'T', 'A'};
constexpr size_t kPreambleBytes = 24;
constexpr uint64_t kMaxHeaderBytes = 16u << 20;

std::string checksum(const std::vector<const std::vector<float>*>& parts) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (const auto* part : parts) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(part->data());
    for (size_t i = 0; i < part->size() * sizeof(float); ++i) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

std::vector<const std::vector<float>*> data_parts(const State& state) {
  std::vector<const std::vector<float>*> parts;
  for (const auto& layer : state.layers) {
    parts.push_back(&layer.conv_state);
    parts.push_back(&layer.ssm_state);
    parts.push_back(&layer.kv_cache);
  }
  return parts;
}

void put_u32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint64_t get_le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Key and value floats one token adds to layer `layer`'s cache; 0 for Mamba layers.
int64_t kv_floats_per_token(const ModelConfig& c, int64_t layer) {
  return c.is_attention_layer(layer) ? 2 * c.attn.num_heads_kv * c.attn.head_dim : 0;
}

}  // namespace

void save_state(const std::string& path, const Model& model, const State& state) {
  nlohmann::ordered_json header;
  header["model"] = model.fingerprint();
  header["n_tokens"] = state.n_tokens;
  header["checksum"] = checksum(data_parts(state));
  header["layers"] = nlohmann::json::array();
  for (const auto& layer : state.layers)
    header["layers"].push_back({{"conv_state", layer.conv_state.size()},
                                {"ssm_state", layer.ssm_state.size()},
                                {"kv_cache", layer.kv_cache.size()}});
  std::string header_text = header.dump();

  unsigned char preamble[kPreambleBytes] = {};
  std::memcpy(preamble, kMagic, 8);
  put_u32(preamble + 8, kStateFileVersion);
  put_u64(preamble + 16, header_text.size());

  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot open for writing");
    out.write(reinterpret_cast<const char*>(preamble), kPreambleBytes);
    out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
    for (const auto* part : data_parts(state))
      out.write(reinterpret_cast<const char*>(part->data()),
                static_cast<std::streamsize>(part->size() * sizeof(float)));
    if (!out) throw Error(path + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) throw Error(path + ": cannot move the written state into place: " + ec.message());
}

State load_state(const std::string& path, const Model& model) {
  MappedFile file(path);
  auto fail = [&](const std::string& what) -> Error {
    return Error(path + ": invalid state file: " + what);
  };

  if (file.size() < kPreambleBytes || std::memcmp(file.data(), kMagic, 8) != 0)
    throw fail("it does not start with the state file magic bytes");
  uint32_t version = static_cast<uint32_t>(get_le(file.data() + 8, 4));
  if (version != kStateFileVersion)
    throw Error(path + ": state file format version " + std::to_string(version) +
                " is not supported; this build reads version " + std::to_string(kStateFileVersion));
  uint64_t header_len = get_le(file.data() + 16, 8);
  if (header_len > kMaxHeaderBytes || header_len > file.size() - kPreambleBytes)
    throw fail("the header length runs past the end of the file (truncated?)");

  const char* header_begin = reinterpret_cast<const char*>(file.data() + kPreambleBytes);
  auto header = nlohmann::json::parse(header_begin, header_begin + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object() || !header["model"].is_string() ||
      !header["n_tokens"].is_number_unsigned() || !header["checksum"].is_string() ||
      !header["layers"].is_array())
    throw fail("the header is not the expected JSON object");

  if (header["model"].get<std::string>() != model.fingerprint())
    throw Error(path + ": the state was saved from another model (fingerprint " +
                header["model"].get<std::string>() + ", this model is " + model.fingerprint() + ")");

  State state = model.new_state();
  state.n_tokens = header["n_tokens"].get<int64_t>();
  const auto& layers = header["layers"];
  if (layers.size() != state.layers.size())
    throw fail("it has " + std::to_string(layers.size()) + " layers, the model has " +
               std::to_string(state.layers.size()));

  uint64_t expected_bytes = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    LayerState& layer = state.layers[i];
    const auto& sizes = layers[i];
    auto size_of = [&](const char* key) -> uint64_t {
      if (!sizes.is_object() || !sizes[key].is_number_unsigned())
        throw fail("layer " + std::to_string(i) + " has no size for " + key);
      return sizes[key].get<uint64_t>();
    };
    uint64_t kv = static_cast<uint64_t>(kv_floats_per_token(model.config(), static_cast<int64_t>(i)) * state.n_tokens);
    if (size_of("conv_state") != layer.conv_state.size() || size_of("ssm_state") != layer.ssm_state.size() ||
        size_of("kv_cache") != kv)
      throw fail("layer " + std::to_string(i) + " has state sizes that do not fit this model");
    layer.kv_cache.resize(kv);
    expected_bytes += (layer.conv_state.size() + layer.ssm_state.size() + kv) * sizeof(float);
  }

  uint64_t data_offset = kPreambleBytes + header_len;
  if (file.size() - data_offset != expected_bytes)
    throw fail("expected " + std::to_string(expected_bytes) + " bytes of state data, found " +
               std::to_string(file.size() - data_offset) + " (truncated or padded)");

  const unsigned char* p = file.data() + data_offset;
  for (const auto* part : data_parts(state)) {
    auto* target = const_cast<std::vector<float>*>(part);
    std::memcpy(target->data(), p, target->size() * sizeof(float));
    p += target->size() * sizeof(float);
  }
  if (checksum(data_parts(state)) != header["checksum"].get<std::string>())
    throw fail("the data does not match its checksum (corrupt)");
  return state;
}

}  // namespace mambacpp
