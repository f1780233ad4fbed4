// `mambacpp logits`: writes the f32 logits of every position of a prompt to a
// safetensors file, for scripts and tests that compare against reference outputs.
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "io/safetensors.h"
#include "mambacpp/error.h"
#include "mambacpp/model.h"

namespace mambacpp::cli {

namespace {

struct LogitsOptions {
  std::string model_dir;
  std::string ids;
  std::string output;
  int64_t split = 0;
  int threads = 1;
  std::string dtype;
};

void run_logits(const LogitsOptions& opt) {
  std::vector<int32_t> ids = parse_ids_argument(opt.ids, "--ids");
  if (ids.empty()) throw Error("--ids: no token ids given");

  auto model = Model::load(opt.model_dir, load_options_for(opt.dtype));
  const int64_t V = model->config().padded_vocab_size;
  check_token_ids(ids, model->config(), "--ids", opt.model_dir);

  ThreadPool pool(opt.threads);
  State state = model->new_state();

  // logits [n_tokens, padded_vocab]; with --split the prompt goes through in pieces.
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t piece = opt.split > 0 ? opt.split : n;
  std::vector<float> logits(static_cast<size_t>(n * V));
  for (int64_t begin = 0; begin < n; begin += piece) {
    int64_t count = std::min(piece, n - begin);
    model->forward(std::span<const int32_t>(ids.data() + begin, count), state, LogitsFor::All,
                   logits.data() + begin * V, pool);
  }

  write_safetensors(opt.output, {{"logits", DType::F32, {n, V}, logits.data()}},
                    {{"model", opt.model_dir}});
}

}  // namespace

void add_logits_command(CLI::App& app) {
  auto opt = std::make_shared<LogitsOptions>();
  CLI::App* cmd = app.add_subcommand("logits", "Write the logits of every prompt position to a safetensors file");
  cmd->add_option("-m,--model", opt->model_dir, "Model directory (config.json + safetensors)")->required();
  cmd->add_option("--ids", opt->ids, "Prompt token ids, comma-separated, or @FILE to read them from a file")->required();
  cmd->add_option("-o,--output", opt->output, "Output file; holds tensor 'logits' [n_tokens, padded_vocab], F32")
      ->required();
  cmd->add_option("--split", opt->split, "Feed the prompt in pieces of this many tokens through the state (0: whole)")
      ->capture_default_str()
      ->check(kNonNegative);
  add_dtype_option(*cmd, opt->dtype);
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] { run_logits(*opt); });
}

}  // namespace mambacpp::cli
