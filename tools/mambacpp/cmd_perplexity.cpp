// `mambacpp perplexity`: token-level perplexity of a text, from windows of --ctx tokens
// (non-overlapping, or overlapping by --stride as other engines report it).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <unistd.h>

#include "cli_common.h"
#include "commands.h"
#include "mambacpp/error.h"
#include "mambacpp/model.h"
#include "mambacpp/tokenizer.h"

namespace mambacpp::cli {

namespace {

struct PerplexityOptions {
  std::string model_dir;
  std::string text_file;
  std::string ids;
  std::string tokenizer_path;
  int64_t ctx = 1024;
  int64_t stride = 0;
  int threads = 1;
  std::string dtype;
};

// Logits computed per forward call, bounding memory to this many rows of the vocabulary.
constexpr int64_t kRowsPerCall = 256;

std::vector<int32_t> read_tokens(const PerplexityOptions& opt, const ModelConfig& config) {
  std::vector<int32_t> ids;
  if (!opt.ids.empty()) {
    ids = parse_ids_argument(opt.ids, "--ids");
  } else {
    std::optional<Tokenizer> tokenizer;
    if (!opt.tokenizer_path.empty()) {
      tokenizer = Tokenizer::from_file(opt.tokenizer_path);
    } else if (std::filesystem::exists(std::filesystem::path(opt.model_dir) / "tokenizer.json")) {
      tokenizer = Tokenizer::from_directory(opt.model_dir);
    } else {
      throw Error(opt.model_dir + ": no tokenizer.json; pass --tokenizer FILE or give --ids");
    }
    ids = tokenizer->encode(read_text_file(opt.text_file, "-f"), /*add_special_tokens=*/false);
  }
  check_token_ids(ids, config, opt.ids.empty() ? "-f" : "--ids", opt.model_dir);
  if (ids.size() < 2) throw Error("the text has fewer than 2 tokens, so there is nothing to predict");
  return ids;
}

// -log softmax(logits)[target], over all padded_vocab entries as the training loss is.
double negative_log_likelihood(const float* logits, int64_t vocab, int32_t target) {
  float max_logit = logits[0];
  for (int64_t v = 1; v < vocab; ++v) max_logit = std::max(max_logit, logits[v]);
  double total = 0;
  for (int64_t v = 0; v < vocab; ++v) total += std::exp(static_cast<double>(logits[v]) - max_logit);
  return std::log(total) + max_logit - logits[target];
}

void run_perplexity(const PerplexityOptions& opt) {
  if (opt.ids.empty() == opt.text_file.empty()) throw Error("give the text with -f FILE or --ids (one of them)");
  auto model = Model::load(opt.model_dir, load_options_for(opt.dtype));
  const int64_t V = model->config().padded_vocab_size;
  std::vector<int32_t> ids = read_tokens(opt, model->config());
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t stride = opt.stride > 0 ? std::min(opt.stride, opt.ctx) : opt.ctx;

  ThreadPool pool(opt.threads);
  std::vector<float> logits(static_cast<size_t>(kRowsPerCall * V));
  double nll = 0;
  int64_t scored = 0, scored_until = 0;  // tokens up to this position have been predicted
  auto start = std::chrono::steady_clock::now();
  const bool progress_on_tty = isatty(STDERR_FILENO) != 0;

  // Window [begin, end) predicts tokens begin+1 .. end-1, of which those not predicted by
  // an earlier window count: each token is scored once, with the longest context that
  // window gives it.
  for (int64_t begin = 0; scored_until < n - 1; begin += stride) {
    const int64_t end = std::min(n, begin + opt.ctx);
    State state = model->new_state();
    for (int64_t t0 = begin; t0 < end - 1; t0 += kRowsPerCall) {
      const int64_t count = std::min(kRowsPerCall, end - 1 - t0);
      model->forward(std::span<const int32_t>(ids.data() + t0, count), state, LogitsFor::All,
                     logits.data(), pool);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t target = t0 + i + 1;
        if (target <= scored_until) continue;
        nll += negative_log_likelihood(logits.data() + i * V, V, ids[target]);
        ++scored;
      }
    }
    scored_until = end - 1;

    // Progress rewrites one line on a terminal; elsewhere (a log file) it is one line at
    // the end.
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress_on_tty || end == n) {
      std::fprintf(stderr, "%sread %lld of %lld tokens, perplexity so far %.4f, %.0f tokens/s",
                   progress_on_tty ? "\r" : "", static_cast<long long>(end), static_cast<long long>(n),
                   std::exp(nll / scored), end / std::max(seconds, 1e-9));
    }
    if (end == n) break;
  }
  std::fprintf(stderr, "\n");
  std::printf("perplexity: %.6f over %lld tokens (ctx %lld, stride %lld)\n", std::exp(nll / scored),
              static_cast<long long>(scored), static_cast<long long>(opt.ctx), static_cast<long long>(stride));
}

}  // namespace

void add_perplexity_command(CLI::App& app) {
  auto opt = std::make_shared<PerplexityOptions>();
  CLI::App* cmd = app.add_subcommand("perplexity", "Measure the perplexity of a text");
  cmd->add_option("-m,--model", opt->model_dir,
                  "Model directory (config.json + safetensors); default: the shipped Tiny Shakespeare model");
  cmd->add_option("-f,--file", opt->text_file, "Text file, tokenized with the model's tokenizer.json");
  cmd->add_option("--ids", opt->ids, "Token ids instead of text, comma-separated or @FILE");
  cmd->add_option("--tokenizer", opt->tokenizer_path, "tokenizer.json to use instead of the model directory's")
      ->check(CLI::ExistingFile);
  cmd->add_option("--ctx", opt->ctx, "Tokens per window; each window starts from an empty state")
      ->capture_default_str()
      ->check(kPositive);
  cmd->add_option("--stride", opt->stride, "Tokens between window starts (0: --ctx, no overlap)")
      ->capture_default_str()
      ->check(kNonNegative);
  add_dtype_option(*cmd, opt->dtype);
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] {
    if (opt->model_dir.empty()) opt->model_dir = shipped_model_dir();
    run_perplexity(*opt);
  });
}

}  // namespace mambacpp::cli
