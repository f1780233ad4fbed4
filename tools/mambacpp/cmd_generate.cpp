// `mambacpp generate`: reads a prompt, then samples tokens and streams them to stdout.
// Everything else (speeds, notes) goes to stderr, so stdout holds only generated output.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "cli_common.h"
#include "commands.h"
#include "mambacpp/error.h"
#include "mambacpp/model.h"
#include "mambacpp/sampler.h"
#include "ops/linear.h"

namespace mambacpp::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct GenerateOptions {
  std::string model_dir;
  std::string prompt;
  std::string prompt_file;
  std::string ids;
  int64_t n_predict = 128;
  SamplerParams sampler;
  std::vector<std::string> stops;
  int64_t prefill_chunk = 512;
  int threads = 1;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<int32_t> prompt_ids(const GenerateOptions& opt, const ModelConfig& config) {
  if (!opt.prompt.empty() || !opt.prompt_file.empty())
    throw Error(opt.model_dir + ": no tokenizer.json, so the prompt must be given as --ids");

  std::vector<int32_t> ids = parse_ids(opt.ids, "--ids");
  if (ids.empty()) throw Error("--ids: no token ids given");
  for (int32_t id : ids)
    if (id >= config.padded_vocab_size)
      throw Error("--ids: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(config.padded_vocab_size) + ") of " + opt.model_dir);
  return ids;
}

// Feeds the prompt in pieces of at most `chunk` tokens (bounding activation memory) and
// returns the logits of its last token [padded_vocab].
std::vector<float> prefill(const Model& model, const std::vector<int32_t>& ids, int64_t chunk,
                           State& state, ThreadPool& pool) {
  std::vector<float> logits(static_cast<size_t>(model.config().padded_vocab_size));
  const int64_t n = static_cast<int64_t>(ids.size());
  for (int64_t begin = 0; begin < n; begin += chunk) {
    int64_t count = std::min(chunk, n - begin);
    bool last = begin + count == n;
    model.forward(std::span<const int32_t>(ids.data() + begin, count), state,
                  last ? LogitsFor::Last : LogitsFor::None, last ? logits.data() : nullptr, pool);
  }
  return logits;
}

void run_generate(const GenerateOptions& opt) {
  auto model = Model::load(opt.model_dir);
  const ModelConfig& config = model->config();
  std::vector<int32_t> ids = prompt_ids(opt, config);

  ThreadPool pool(opt.threads);
  set_blas_threads(opt.threads);
  State state = model->new_state();
  Sampler sampler(opt.sampler, config.vocab_size);
  for (int32_t id : ids) sampler.accept(id);

  auto prefill_start = Clock::now();
  std::vector<float> logits = prefill(*model, ids, opt.prefill_chunk, state, pool);
  double prefill_seconds = seconds_since(prefill_start);

  auto decode_start = Clock::now();
  int64_t generated = 0;
  for (int64_t i = 0; i < opt.n_predict; ++i) {
    int32_t token = sampler.sample(logits);
    sampler.accept(token);
    ++generated;
    std::printf(generated == 1 ? "%d" : " %d", token);
    std::fflush(stdout);

    if (i + 1 < opt.n_predict) model->forward(std::span<const int32_t>(&token, 1), state, LogitsFor::Last, logits.data(), pool);
  }
  if (generated > 0) std::printf("\n");
  double decode_seconds = seconds_since(decode_start);

  std::fprintf(stderr, "prefill: %zu tokens in %.3f s (%.1f tokens/s)\n", ids.size(), prefill_seconds,
               ids.size() / std::max(prefill_seconds, 1e-9));
  if (generated > 0)
    std::fprintf(stderr, "decode: %lld tokens in %.3f s (%.1f tokens/s)\n",
                 static_cast<long long>(generated), decode_seconds,
                 generated / std::max(decode_seconds, 1e-9));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto opt = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text (or token ids) from a prompt");
  cmd->add_option("-m,--model", opt->model_dir, "Model directory (config.json + safetensors)")->required();
  auto* prompt = cmd->add_option("-p,--prompt", opt->prompt, "Prompt text (needs tokenizer.json)");
  auto* file = cmd->add_option("-f,--file", opt->prompt_file, "Read the prompt text from this file");
  auto* ids = cmd->add_option("--ids", opt->ids, "Prompt token ids, comma-separated");
  prompt->excludes(file)->excludes(ids);
  file->excludes(ids);
  cmd->add_option("-n,--n-predict", opt->n_predict, "Tokens to generate (0: only read the prompt)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", opt->sampler.temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-k", opt->sampler.top_k, "Keep the k most likely tokens (0: off)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", opt->sampler.top_p, "Keep the most likely tokens up to this total probability (1: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-p", opt->sampler.min_p, "Drop tokens below this fraction of the top probability (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--repeat-penalty", opt->sampler.repeat_penalty, "Penalty on recently seen tokens (1: off)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", opt->sampler.seed, "Random seed")->capture_default_str();
  cmd->add_option("--stop", opt->stops, "Stop when the output contains this string (repeatable)");
  cmd->add_option("--prefill-chunk", opt->prefill_chunk, "Prompt tokens per forward call during prefill")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] { run_generate(*opt); });
}

}  // namespace mambacpp::cli
