// `mambacpp bench`: prefill (pp) and decode (tg) speed of a model, with this machine's
// read bandwidth and f32 peak measured in the same run and each result's ratio to the
// bound they set. Output as a Markdown table for people or JSON for scripts.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_common.h"
#include "commands.h"
#include "mambacpp/error.h"
#include "mambacpp/model.h"
#include "ops/cpu_kernels.h"
#include "runtime/machine_probe.h"

namespace mambacpp::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string model_dir;
  int64_t n_prompt = 512;
  int64_t n_generate = 128;
  std::string batches = "1";
  int threads = 1;
  int64_t repetitions = 5;
  std::string dtype = "as-stored";
  std::string output = "md";
};

struct Figure {
  std::string test;   // "pp512", "tg128"
  int64_t batch = 1;
  double mean = 0, stddev = 0;  // tokens/s over the repetitions
  // The speed this machine's floors allow (weights read at the measured bandwidth, or
  // FLOPs at the measured peak): a roofline bound, which small models that fit in the
  // caches can exceed.
  double bound = 0;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Figure summarize(std::string test, int64_t batch, const std::vector<double>& rates, double bound) {
  Figure f{std::move(test), batch};
  for (double r : rates) f.mean += r / rates.size();
  for (double r : rates) f.stddev += (r - f.mean) * (r - f.mean) / std::max<size_t>(1, rates.size() - 1);
  f.stddev = std::sqrt(f.stddev);
  f.bound = bound;
  return f;
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = dist(rng);
  return ids;
}

// Matrix multiply-adds per token in the layers (the LM head excluded, since a prefill
// needs it for the last token only), times two: the FLOPs a prefill token costs.
double flops_per_token(const ModelConfig& c) {
  double per_layer = 0;
  if (c.mixer == MixerKind::Mamba1) {
    per_layer = 2.0 * c.d_inner * c.d_model + (c.dt_rank + 2.0 * c.d_state) * c.d_inner +
                1.0 * c.d_inner * c.dt_rank + 1.0 * c.d_model * c.d_inner;
  } else {
    double in_rows = 2.0 * c.d_inner + 2.0 * c.ngroups * c.d_state + c.n_heads();
    per_layer = in_rows * c.d_model + 1.0 * c.d_model * c.d_inner;
  }
  if (c.d_intermediate > 0) {
    double f = std::ceil(c.d_intermediate / 128.0) * 128.0;
    per_layer += 3.0 * f * c.d_model;
  }
  return 2.0 * per_layer * c.n_layer;
}

Figure bench_prefill(const Model& model, const BenchOptions& opt, double flops_floor, ThreadPool& pool) {
  const int64_t V = model.config().padded_vocab_size;
  std::vector<int32_t> ids = random_ids(opt.n_prompt, model.config().vocab_size, 1);
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<double> rates;
  for (int64_t r = 0; r <= opt.repetitions; ++r) {
    State state = model.new_state();
    auto start = Clock::now();
    for (int64_t begin = 0; begin < opt.n_prompt; begin += 512) {
      int64_t count = std::min<int64_t>(512, opt.n_prompt - begin);
      bool last = begin + count == opt.n_prompt;
      model.forward(std::span<const int32_t>(ids.data() + begin, count), state,
                    last ? LogitsFor::Last : LogitsFor::None, last ? logits.data() : nullptr, pool);
    }
    double rate = opt.n_prompt / seconds_since(start);
    if (r > 0) rates.push_back(rate);  // the first run warms the caches and page tables
  }
  return summarize("pp" + std::to_string(opt.n_prompt), 1, rates, flops_floor);
}

Figure bench_decode(const Model& model, const BenchOptions& opt, int64_t batch, double step_floor,
                    ThreadPool& pool) {
  const int64_t V = model.config().padded_vocab_size;
  std::vector<double> rates;
  for (int64_t r = 0; r <= opt.repetitions; ++r) {
    std::vector<State> states(static_cast<size_t>(batch), model.new_state());
    std::vector<State*> pointers;
    for (auto& s : states) pointers.push_back(&s);
    std::vector<int32_t> ids = random_ids(batch, model.config().vocab_size, 2 + static_cast<uint32_t>(r));
    std::vector<float> logits(static_cast<size_t>(batch * V));

    auto start = Clock::now();
    for (int64_t step = 0; step < opt.n_generate; ++step) {
      model.forward_batch(ids, pointers, logits.data(), pool);
      for (int64_t b = 0; b < batch; ++b) ids[b] = (ids[b] * 31 + 7) % model.config().vocab_size;
    }
    double rate = batch * opt.n_generate / seconds_since(start);
    if (r > 0) rates.push_back(rate);
  }
  return summarize("tg" + std::to_string(opt.n_generate), batch, rates, step_floor * batch);
}

void print_markdown(const BenchOptions& opt, const Model& model, const MachineFloors& floors,
                    const std::vector<Figure>& figures) {
  std::printf("model: %s (%s weights, %.1f MB)\n", opt.model_dir.c_str(), model.matrix_dtype_name().c_str(),
              model.weight_bytes() / 1e6);
  std::printf("machine: %d threads, kernel set %s, read bandwidth %.1f GB/s, f32 peak %.0f GFLOP/s\n\n",
              opt.threads, active_cpu_kernels().isa, floors.read_gb_per_s, floors.fp32_gflop_per_s);
  std::printf("| test | batch | tokens/s | ± | bound tokens/s | of bound |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (const Figure& f : figures)
    std::printf("| %s | %lld | %.1f | %.1f | %.1f | %.0f%% |\n", f.test.c_str(),
                static_cast<long long>(f.batch), f.mean, f.stddev, f.bound, 100.0 * f.mean / f.bound);

  std::printf(
      "\nppN: prefill of N tokens. tgN: N decode steps of `batch` sequences at once.\n"
      "±: standard deviation over the repetitions.\n"
      "bound: the f32 peak at the model's matrix FLOPs per token (pp), or every weight\n"
      "read once per step at the read bandwidth (tg). Weights that fit in the CPU's caches\n"
      "can decode above it.\n");
}

void print_json(const BenchOptions& opt, const Model& model, const MachineFloors& floors,
                const std::vector<Figure>& figures) {
  nlohmann::ordered_json out;
  out["model"] = opt.model_dir;
  out["weights_dtype"] = model.matrix_dtype_name();
  out["weight_bytes"] = model.weight_bytes();
  out["threads"] = opt.threads;
  out["kernels"] = active_cpu_kernels().isa;
  out["read_gb_per_s"] = floors.read_gb_per_s;
  out["fp32_gflop_per_s"] = floors.fp32_gflop_per_s;
  out["results"] = nlohmann::json::array();
  for (const Figure& f : figures)
    out["results"].push_back({{"test", f.test}, {"batch", f.batch}, {"tokens_per_s", f.mean},
                              {"stddev", f.stddev}, {"bound_tokens_per_s", f.bound},
                              {"fraction_of_bound", f.mean / f.bound}});
  std::printf("%s\n", out.dump(2).c_str());
}

void run_bench(const BenchOptions& opt) {
  std::vector<int32_t> batches;
  try {
    batches = parse_ids(opt.batches, "-b");
  } catch (const Error&) {
    throw Error("-b: '" + opt.batches + "' is not a list of batch sizes such as 1,4,16");
  }
  for (int32_t b : batches)
    if (b < 1) throw Error("-b: batch sizes must be at least 1");

  auto model = Model::load(opt.model_dir, load_options_for(opt.dtype));
  ThreadPool pool(opt.threads);
  MachineFloors floors = measure_machine_floors(pool);

  // Prefill floor: FLOPs per token at the f32 peak. Decode floor: every weight read once
  // per step at the measured bandwidth.
  double prefill_floor = floors.fp32_gflop_per_s * 1e9 / flops_per_token(model->config());
  double step_floor = floors.read_gb_per_s * 1e9 / model->weight_bytes();

  std::vector<Figure> figures;
  if (opt.n_prompt > 0) figures.push_back(bench_prefill(*model, opt, prefill_floor, pool));
  if (opt.n_generate > 0)
    for (int32_t b : batches) figures.push_back(bench_decode(*model, opt, b, step_floor, pool));

  if (opt.output == "json") {
    print_json(opt, *model, floors, figures);
  } else {
    print_markdown(opt, *model, floors, figures);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Measure prefill and decode speed against the bounds this machine's bandwidth and peak set");
  cmd->add_option("-m,--model", opt->model_dir, "Model directory (config.json + safetensors)")->required();
  cmd->add_option("-p,--n-prompt", opt->n_prompt, "Prompt tokens for the prefill test (0: skip)")
      ->capture_default_str()
      ->check(kNonNegative);
  cmd->add_option("-n,--n-gen", opt->n_generate, "Decode steps per decode test (0: skip)")
      ->capture_default_str()
      ->check(kNonNegative);
  cmd->add_option("-b,--batch", opt->batches, "Sequences decoding at once, comma-separated list")
      ->capture_default_str();
  cmd->add_option("-r,--repetitions", opt->repetitions, "Timed repetitions of each test (after one warm-up)")
      ->capture_default_str()
      ->check(kPositive);
  add_dtype_option(*cmd, opt->dtype);
  cmd->add_option("-o,--output", opt->output, "Output format")
      ->capture_default_str()
      ->check(CLI::IsMember({"md", "json"}));
  add_threads_option(*cmd, opt->threads);
  cmd->callback([opt] { run_bench(*opt); });
}

}  // namespace mambacpp::cli
