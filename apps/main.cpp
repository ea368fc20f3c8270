// hearth: one binary, subcommands sharing the core library. This file builds the CLI and is the only place
// that maps errors to exit codes (docs/cli.md):
//   0 ok, 1 internal, 2 usage/config, 3 I/O, 4 model/format, 5 resource, 130 interrupted (SIGINT),
//   143 terminated (SIGTERM).
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <new>
#include <string>

#include <c10/util/Exception.h>
#include <fmt/format.h>

#include "apps/cli_docs.h"
#include "apps/cli_suggest.h"
#include "apps/commands.h"
#include "core/blas_env.h"
#include "core/error.h"
#include "core/heap.h"
#include "core/log.h"
#include "core/signals.h"
#include "io/mapped_file.h"

#ifndef HEARTH_VERSION
#define HEARTH_VERSION "0.0.0"
#endif

namespace {

// libgomp reads its settings when it is loaded, before main(). Without OMP_NUM_THREADS in the environment
// its idle threads give up spinning almost at once, and two-thread matmuls on a 2-core machine ran ~20×
// slower (bench/README.md). So, unless the user set it, set OMP_NUM_THREADS from --threads (or the core
// count). Returns whether it set it.
bool omp_env_prepare(int argc, char** argv) {
  if (std::getenv("OMP_NUM_THREADS")) return false;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    try {
      if ((a == "--threads" || a == "-t") && i + 1 < argc) threads = std::stoi(argv[i + 1]);
      if (a.rfind("--threads=", 0) == 0) threads = std::stoi(a.substr(10));
    } catch (const std::exception&) {
      threads = 0;  // CLI11 reports the bad value
    }
  }
  threads = hearth::app::threads_resolve(threads);
  setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
  return true;
}

// libgomp and OpenBLAS read these settings when they load (core/blas_env.h): when either had to be set, hearth
// executes itself again, once (HEARTH_REEXEC guards against loops; on failure it carries on with the defaults).
void env_prepare(int argc, char** argv) {
  if (std::getenv("HEARTH_REEXEC")) return;
  const bool omp = omp_env_prepare(argc, argv), blas = hearth::openblas_coretype_prepare();
  if (!omp && !blas) return;
  setenv("HEARTH_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);
}

int report(const hearth::app::GlobalOptions& g, const std::string& message, int code) {
  std::cerr << "hearth: error: " << message << std::endl;
  if (g.json) hearth::app::json_print({{"error", {{"message", message}, {"exit_code", code}}}});
  return code;
}

int exit_code_for(const hearth::Error& e) {
  if (e.exit_code() == hearth::ExitCode::kInterrupted && hearth::interrupt_signal() == SIGTERM) return 143;
  return static_cast<int>(e.exit_code());
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hearth;
  env_prepare(argc, argv);
  heap_keep_freed_blocks();
  app::GlobalOptions g;
  CLI::App cli{"hearth — train, host and serve your own language models, on your own machine.", "hearth"};
  cli.set_version_flag("--version", "hearth " HEARTH_VERSION);
  cli.require_subcommand(1);
  cli.fallthrough();
  cli.add_option("-t,--threads", g.threads, "CPU threads for tensor math (default: all cores)");
  auto* log_level = cli.add_option("--log-level", g.log_level, "debug|info|warn|error|off (logs go to stderr)");
  cli.add_flag("-q,--quiet", g.quiet, "Errors only on stderr: no progress, info or warnings (results still go to stdout)")
      ->excludes(log_level);
  cli.add_flag("--json", g.json, "Print a machine-readable JSON result on stdout");
  cli.add_option("--device", g.device, "cpu|cuda|auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));

  app::Runner run;
  app::add_generate(cli, g, run);
  app::add_chat(cli, g, run);
  app::add_eval(cli, g, run);
  app::add_inspect(cli, g, run);
  app::add_tokenize(cli, g, run);
  app::add_chat_template(cli, g, run);
  app::add_ingest(cli, g, run);
  app::add_dataset(cli, g, run);
  app::add_finetune_lora(cli, g, run);
  app::add_report(cli, g, run);
  app::add_serve(cli, g, run);
  app::add_quantize(cli, g, run);
  app::add_export(cli, g, run);
  app::add_pull(cli, g, run);
  app::add_list(cli, g, run);
  app::add_rm(cli, g, run);
  app::add_cli_docs(cli, run, HEARTH_VERSION);

  // `hearth` alone lists the commands (on stderr: it is still a usage error, exit 2); `hearth help [COMMAND]` is
  // `hearth [COMMAND] --help`.
  if (argc == 1) {
    std::cerr << cli.help();
    return static_cast<int>(ExitCode::kUsage);
  }
  if (std::string(argv[1]) == "help") {
    if (argc == 2) {
      std::cout << cli.help();
      return 0;
    }
    for (const auto* sub : cli.get_subcommands([](const CLI::App*) { return true; }))
      if (sub->get_name() == argv[2]) {
        std::cout << sub->help("hearth");
        return 0;
      }
    std::cerr << fmt::format("hearth help: unknown command '{}'; `hearth help` lists them\n", argv[2]);
    return static_cast<int>(ExitCode::kUsage);
  }
  try {
    cli.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return cli.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    // An unknown option: name it and the nearest one it may have meant (CLI11 only says it was not expected).
    const std::string unknown = dynamic_cast<const CLI::ExtrasError*>(&e) ? app::unknown_options_message(cli, argc, argv) : "";
    if (unknown.empty()) {
      cli.exit(e);
    } else {
      std::cerr << unknown << "Run with --help for more information.\n";
    }
    return static_cast<int>(ExitCode::kUsage);
  }
  signals_install();
  try {
    app::globals_apply(g);
    app::models_resolve();  // --model org/name -> its folder in the Hugging Face cache
    if (run) run();
    // A mapped model or dataset file changed underneath (io/mapped_file.h): what was computed from it is void.
    if (auto damage = io::mapped_files_damage_seen(); !damage.empty())
      return report(g, damage, static_cast<int>(ExitCode::kIo));
    return 0;
  } catch (const Error& e) {
    if (auto damage = io::mapped_files_damage_seen(); !damage.empty())
      return report(g, damage, static_cast<int>(ExitCode::kIo));
    return report(g, e.what(), exit_code_for(e));
  } catch (const std::bad_alloc&) {
    return report(g, "out of memory", static_cast<int>(ExitCode::kResource));
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    bool oom = msg.find("out of memory") != std::string::npos || msg.find("DefaultCPUAllocator") != std::string::npos;
    return report(g, "libtorch: " + msg, static_cast<int>(oom ? ExitCode::kResource : ExitCode::kInternal));
  } catch (const std::exception& e) {
    return report(g, std::string("internal error: ") + e.what(), static_cast<int>(ExitCode::kInternal));
  }
}
