// The local launcher behind `hearth finetune-lora --nproc-per-node N`: N copies of this hearth binary, each with
// torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT = a free port), watched
// until they end. It is not torchrun: one machine, no restarts. Across machines, torchrun or Slurm starts the
// workers (docs/distributed.md). POSIX only (fork/exec, prctl); no libtorch.
//
// What it guarantees: SIGINT/SIGTERM to the launcher is forwarded once to every worker (they finish the step,
// rank 0 checkpoints, all exit 130/143); a worker that fails makes the launcher wait at most the timeout (plus a
// few seconds) for the others to stop by themselves and then kill them; the workers get SIGTERM if the launcher
// itself dies (PR_SET_PDEATHSIG). Workers run in their own process group, so a terminal's Ctrl-C reaches them
// only through the launcher, once.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/error.h"

namespace hearth::train {

struct LaunchOptions {
  int nproc = 2;
  // The workers' command-line arguments (after the program name), without --nproc-per-node.
  std::vector<std::string> args;
  // CPU threads per worker: passed as --threads and OMP_NUM_THREADS.
  int threads = 1;
  // How long the workers' collectives wait (--dist-timeout): after one worker failed, the others are killed when
  // they have not stopped by themselves this long (plus 5 s) later.
  std::chrono::milliseconds timeout{300000};
};

// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel's pick for port 0): the launcher's
// MASTER_PORT. Throws IoError (naming --nproc-per-node) when no socket can be had.
int free_loopback_port();

// A worker ended with a non-zero exit code; the launcher exits with the same code (the worker's own error message
// is above it on stderr).
class WorkerExitError : public Error {
 public:
  WorkerExitError(const std::string& message, int code) : Error(message), code_(code) {}
  ExitCode exit_code() const noexcept override { return static_cast<ExitCode>(code_); }

 private:
  int code_;
};

// Starts the workers and waits for them. Returns when all exited 0. Throws InterruptedError when a signal stopped
// them, WorkerExitError with the exit code of the worker that failed first for its own reason (a worker that
// stopped because another did exits 6, which counts only when no worker has a reason of its own), DistributedError
// when a worker was killed by a signal, IoError when a worker cannot be started.
void workers_run(const LaunchOptions& options);

// This process's command-line arguments (after the program name), from /proc/self/cmdline.
std::vector<std::string> self_arguments();

// `args` without the option `name` and its value ("--name V" or "--name=V").
std::vector<std::string> arguments_without(const std::vector<std::string>& args, const std::string& name);

}  // namespace hearth::train
