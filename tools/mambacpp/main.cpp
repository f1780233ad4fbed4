#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.h"
#include "mambacpp/error.h"
#include "ops/cpu_kernels.h"

int main(int argc, char** argv) {
  CLI::App app{"mambacpp: run Mamba state-space language models on the CPU"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");

  mambacpp::cli::add_bench_command(app);
  mambacpp::cli::add_convert_command(app);
  mambacpp::cli::add_generate_command(app);
  mambacpp::cli::add_logits_command(app);
  mambacpp::cli::add_perplexity_command(app);
  mambacpp::cli::add_tokenize_command(app);
  mambacpp::cli::add_train_command(app);

  try {
    mambacpp::check_isa_request();
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error; CLI11's own report adds a second line.
    std::fprintf(stderr, "error: %s (see mambacpp --help)\n", e.what());
    return 2;
  } catch (const mambacpp::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
