// `mambacpp convert`: writes a checkpoint with its weight matrices in another dtype.
#include <memory>

#include "cli_common.h"
#include "commands.h"
#include "model/convert_checkpoint.h"

namespace mambacpp::cli {

namespace {

struct ConvertOptions {
  std::string model_dir;
  std::string output_dir;
  std::string dtype = "bf16";
};

}  // namespace

void add_convert_command(CLI::App& app) {
  auto opt = std::make_shared<ConvertOptions>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "Write a copy of a checkpoint with its weight matrices in another dtype");
  cmd->add_option("-m,--model", opt->model_dir, "Input model directory")->required();
  cmd->add_option("-o,--output", opt->output_dir, "Output directory (created if missing)")->required();
  cmd->add_option("--dtype", opt->dtype, "Dtype of the weight matrices; norms, biases, conv, A_log and D stay as stored")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  cmd->callback([opt] {
    DType dtype = DType::BF16;
    if (opt->dtype == "f32") dtype = DType::F32;
    if (opt->dtype == "f16") dtype = DType::F16;
    convert_checkpoint(opt->model_dir, opt->output_dir, dtype);
  });
}

}  // namespace mambacpp::cli
