// `mambacpp generate`: reads a prompt, then samples tokens and streams them to stdout.
// Everything else (speeds, notes) goes to stderr, so stdout holds only generated output.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "commands.h"
#include "mambacpp/error.h"
#include "mambacpp/model.h"
#include "mambacpp/sampler.h"
#include "mambacpp/tokenizer.h"
#include "runtime/batch_decoder.h"
#include "runtime/state_file.h"
#include "runtime/stop_strings.h"

namespace mambacpp::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct GenerateOptions {
  std::string model_dir;
  std::string prompt;
  std::string prompt_file;
  std::string ids;
  std::string tokenizer_path;
  std::string load_state_path;
  std::string save_state_path;
  std::string save_final_state_path;
  int64_t n_predict = 128;
  SamplerParams sampler;
  std::vector<std::string> stops;
  int64_t prefill_chunk = 512;
  int64_t parallel = 1;
  int threads = 1;
  std::string dtype;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The tokenizer of --tokenizer, else DIR/tokenizer.json, else none (ids in and out).
std::optional<Tokenizer> load_tokenizer(const GenerateOptions& opt) {
  if (!opt.tokenizer_path.empty()) return Tokenizer::from_file(opt.tokenizer_path);
  if (std::filesystem::exists(std::filesystem::path(opt.model_dir) / "tokenizer.json"))
    return Tokenizer::from_directory(opt.model_dir);
  return std::nullopt;
}

std::vector<int32_t> prompt_ids(const GenerateOptions& opt, const ModelConfig& config,
                                const std::optional<Tokenizer>& tokenizer) {
  std::vector<int32_t> ids;
  std::string flag;
  if (!opt.ids.empty()) {
    flag = "--ids";
    ids = parse_ids_argument(opt.ids, flag);
  } else {
    flag = opt.prompt_file.empty() ? "-p" : "-f";
    std::string text = opt.prompt_file.empty() ? opt.prompt : read_text_file(opt.prompt_file, "-f");
    if (!tokenizer)
      throw Error(opt.model_dir + ": no tokenizer.json, so the prompt must be given as --ids "
                                  "(or pass --tokenizer FILE)");
    ids = tokenizer->encode(text);
  }

  if (ids.empty()) throw Error(flag + ": the prompt is empty; give at least one token");
  check_token_ids(ids, config, flag, opt.model_dir);
  return ids;
}

// Writes generated tokens to stdout as they come: text through the tokenizer's stream
// decoder and the stop-string filter, or space-separated ids when there is no tokenizer.
class OutputStream {
 public:
  OutputStream(const std::optional<Tokenizer>& tokenizer, const std::vector<std::string>& stops)
      : tokenizer_(tokenizer), stops_(stops) {
    if (tokenizer_) decoder_.emplace(*tokenizer_);
  }

  // Prints a token; returns false once a stop string has appeared.
  bool write(int32_t token) {
    if (!decoder_) {
      std::printf(count_++ == 0 ? "%d" : " %d", token);
      std::fflush(stdout);
      return true;
    }
    print(stops_.push(decoder_->push(token)));
    return !stops_.stopped();
  }

  void finish() {
    if (!decoder_) {
      if (count_ > 0) std::printf("\n");
    } else {
      print(stops_.push(decoder_->finish()));
      print(stops_.finish());
    }
    std::fflush(stdout);
  }

 private:
  static void print(const std::string& text) {
    if (text.empty()) return;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }

  const std::optional<Tokenizer>& tokenizer_;
  std::optional<StreamDecoder> decoder_;
  StopStringFilter stops_;
  int64_t count_ = 0;
};

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

void print_speed(const char* phase, int64_t tokens, double seconds) {
  std::fprintf(stderr, "%s: %lld tokens in %.3f s (%.1f tokens/s)\n", phase,
               static_cast<long long>(tokens), seconds, tokens / std::max(seconds, 1e-9));
}

// --parallel N: N continuations of one prompt, decoded together, each with its own seed
// (seed + i). Each is printed when all are done, as one JSON object per line.
void generate_parallel(const GenerateOptions& opt, const Model& model, const State& prompt_state,
                       const std::vector<float>& logits, int64_t vocab_limit,
                       const std::optional<Tokenizer>& tokenizer, ThreadPool& pool) {
  const int32_t eos = tokenizer ? tokenizer->eos_id() : -1;
  std::vector<DecodeRequest> requests;
  std::vector<std::string> texts(static_cast<size_t>(opt.parallel));
  std::vector<std::optional<StreamDecoder>> decoders(static_cast<size_t>(opt.parallel));
  std::vector<StopStringFilter> filters;
  for (int64_t i = 0; i < opt.parallel; ++i) filters.emplace_back(opt.stops);

  for (int64_t i = 0; i < opt.parallel; ++i) {
    SamplerParams params = opt.sampler;
    params.seed = opt.sampler.seed + static_cast<uint64_t>(i);
    DecodeRequest& r = requests.emplace_back(
        DecodeRequest{prompt_state, logits, Sampler(params, vocab_limit), 0, -1, nullptr, {}, false});
    r.max_tokens = opt.n_predict;
    r.eos = eos;
    if (tokenizer) {
      decoders[i].emplace(*tokenizer);
      r.on_token = [&, i](int32_t token) {
        texts[i] += filters[i].push(decoders[i]->push(token));
        return !filters[i].stopped();
      };
    }
  }

  std::vector<DecodeRequest*> order;
  for (auto& r : requests) order.push_back(&r);
  auto start = Clock::now();
  decode_requests(model, order, opt.parallel, pool);
  double seconds = seconds_since(start);

  int64_t total = 0;
  for (int64_t i = 0; i < opt.parallel; ++i) {
    const DecodeRequest& r = requests[i];
    total += static_cast<int64_t>(r.output.size());
    nlohmann::json line{{"sequence", i}, {"ids", r.output}};
    if (tokenizer) {
      texts[i] += filters[i].push(decoders[i]->finish());
      texts[i] += filters[i].finish();
      line["text"] = texts[i];
    }
    std::printf("%s\n", line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  std::fflush(stdout);
  print_speed("decode (all sequences)", total, seconds);
}

void run_generate(const GenerateOptions& opt) {
  if (opt.prompt.empty() && opt.prompt_file.empty() && opt.ids.empty())
    throw Error(opt.load_state_path.empty()
                    ? "no prompt: give -p TEXT, -f FILE or --ids 1,2,3"
                    : "--load-state: give the text that follows the saved state with -p, -f or --ids");
  if (opt.parallel > 1 && !opt.save_final_state_path.empty())
    throw Error("--save-state-final: saves one sequence's state, so it cannot be combined with --parallel");
  auto model = Model::load(opt.model_dir, load_options_for(opt.dtype));
  const ModelConfig& config = model->config();
  std::optional<Tokenizer> tokenizer = load_tokenizer(opt);
  if (!tokenizer && !opt.stops.empty())
    throw Error("--stop: " + opt.model_dir + " has no tokenizer.json, so the output is token ids "
                "and has no text to match (pass --tokenizer FILE)");
  std::vector<int32_t> ids = prompt_ids(opt, config, tokenizer);

  // Never sample an id the tokenizer lacks, nor a padding row of the vocabulary.
  int64_t vocab_limit = config.vocab_size;
  if (tokenizer) vocab_limit = std::min<int64_t>(vocab_limit, tokenizer->vocab_size());
  const int32_t eos = tokenizer ? tokenizer->eos_id() : -1;

  ThreadPool pool(opt.threads);
  State state = opt.load_state_path.empty() ? model->new_state() : load_state(opt.load_state_path, *model);
  Sampler sampler(opt.sampler, vocab_limit);
  for (int32_t id : ids) sampler.accept(id);

  auto prefill_start = Clock::now();
  std::vector<float> logits = prefill(*model, ids, opt.prefill_chunk, state, pool);
  double prefill_seconds = seconds_since(prefill_start);
  if (!opt.save_state_path.empty()) save_state(opt.save_state_path, *model, state);

  if (opt.parallel > 1) {
    print_speed("prefill", static_cast<int64_t>(ids.size()), prefill_seconds);
    generate_parallel(opt, *model, state, logits, vocab_limit, tokenizer, pool);
    return;
  }

  OutputStream output(tokenizer, opt.stops);
  auto decode_start = Clock::now();
  int64_t generated = 0;
  std::optional<int32_t> unread;  // printed but not yet fed to the model
  for (int64_t i = 0; i < opt.n_predict; ++i) {
    int32_t token = sampler.sample(logits);
    ++generated;
    if (token == eos) break;
    sampler.accept(token);
    unread = token;
    if (!output.write(token)) break;

    if (i + 1 < opt.n_predict) {
      model->forward(std::span<const int32_t>(&token, 1), state, LogitsFor::Last, logits.data(), pool);
      unread.reset();
    }
  }
  output.finish();

  // The final state covers every printed token, so a later --load-state continues the text.
  if (!opt.save_final_state_path.empty()) {
    if (unread) model->forward(std::span<const int32_t>(&*unread, 1), state, LogitsFor::None, nullptr, pool);
    save_state(opt.save_final_state_path, *model, state);
  }
  double decode_seconds = seconds_since(decode_start);

  // Text output ends where the model stopped, without a newline of ours; start the report
  // on a fresh line of the terminal.
  if (tokenizer) std::fputc('\n', stderr);
  print_speed("prefill", static_cast<int64_t>(ids.size()), prefill_seconds);
  if (generated > 0) print_speed("decode", generated, decode_seconds);
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto opt = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text (or token ids) from a prompt");

  // Model and prompt.
  cmd->add_option("-m,--model", opt->model_dir,
                  "Model directory (config.json + safetensors); default: the shipped Tiny Shakespeare model");
  auto* prompt = cmd->add_option("-p,--prompt", opt->prompt, "Prompt text (needs tokenizer.json)");
  auto* file = cmd->add_option("-f,--file", opt->prompt_file, "Read the prompt text from this file");
  auto* ids = cmd->add_option("--ids", opt->ids, "Prompt token ids, comma-separated, or @FILE to read them from a file");
  cmd->add_option("--tokenizer", opt->tokenizer_path, "tokenizer.json to use instead of the model directory's")
      ->check(CLI::ExistingFile);
  prompt->excludes(file)->excludes(ids);
  file->excludes(ids);

  // Sampling and stopping.
  cmd->add_option("-n,--n-predict", opt->n_predict, "Tokens to generate (0: only read the prompt)")
      ->capture_default_str()
      ->check(kNonNegative);
  cmd->add_option("--temp", opt->sampler.temperature, "Sampling temperature (0: greedy)")
      ->capture_default_str()
      ->check(kNonNegative);
  cmd->add_option("--top-k", opt->sampler.top_k, "Keep the k most likely tokens (0: off)")
      ->capture_default_str()
      ->check(kNonNegative);
  cmd->add_option("--top-p", opt->sampler.top_p, "Keep the most likely tokens up to this total probability (1: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--min-p", opt->sampler.min_p, "Drop tokens below this fraction of the top probability (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--repeat-penalty", opt->sampler.repeat_penalty, "Penalty on recently seen tokens (1: off)")
      ->capture_default_str()
      ->check(kPositive);
  cmd->add_option("--seed", opt->sampler.seed, "Random seed")->capture_default_str();
  cmd->add_option("--stop", opt->stops, "Stop when the output contains this string (repeatable)");

  // Several sequences, saved states and speed.
  cmd->add_option("--parallel", opt->parallel,
                  "Generate this many continuations together (seeds seed, seed+1, ...); "
                  "each is printed as a JSON line {sequence, ids, text}")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--load-state", opt->load_state_path,
                  "Continue from a state saved by --save-state; the prompt is the text that follows it")
      ->check(CLI::ExistingFile);
  cmd->add_option("--save-state", opt->save_state_path, "Save the state after reading the prompt to this file");
  cmd->add_option("--save-state-final", opt->save_final_state_path,
                  "Save the state after the generated tokens to this file");
  cmd->add_option("--prefill-chunk", opt->prefill_chunk, "Prompt tokens per forward call during prefill")
      ->capture_default_str()
      ->check(kPositive);
  add_dtype_option(*cmd, opt->dtype);
  add_threads_option(*cmd, opt->threads);

  cmd->callback([opt] {
    if (opt->model_dir.empty()) opt->model_dir = shipped_model_dir();
    run_generate(*opt);
  });
}

}  // namespace mambacpp::cli
