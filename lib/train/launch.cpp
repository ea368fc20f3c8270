#include "train/launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/log.h"
#include "core/signals.h"
#include "io/atomic_file.h"

extern char** environ;

namespace hearth::train {

namespace {

// The environment of worker `rank`: this process's, with torchrun's variables and the thread count replaced.
std::vector<std::string> worker_environment(int rank, const LaunchOptions& o, int port) {
  const std::vector<std::pair<std::string, std::string>> set = {{"RANK", std::to_string(rank)},
                                                                {"LOCAL_RANK", std::to_string(rank)},
                                                                {"WORLD_SIZE", std::to_string(o.nproc)},
                                                                {"LOCAL_WORLD_SIZE", std::to_string(o.nproc)},
                                                                {"MASTER_ADDR", "127.0.0.1"},
                                                                {"MASTER_PORT", std::to_string(port)},
                                                                {"OMP_NUM_THREADS", std::to_string(o.threads)},
                                                                {"HEARTH_REEXEC", "1"}};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool replaced = false;
    for (const auto& [k, v] : set) replaced = replaced || kv.rfind(k + "=", 0) == 0;
    if (!replaced) env.push_back(kv);
  }
  for (const auto& [k, v] : set) env.push_back(k + "=" + v);
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

struct Worker {
  pid_t pid = -1;
  bool running = true;
  int code = 0;    // exit code when it exited
  int signal = 0;  // the signal that killed it, or 0
};

std::string worker_end(int rank, const Worker& w) {
  if (w.signal)
    return fmt::format("worker {} (pid {}) was killed by signal {} ({})", rank, w.pid, w.signal, strsignal(w.signal));
  return fmt::format("worker {} (pid {}) exited with code {}", rank, w.pid, w.code);
}

}  // namespace

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw IoError(fmt::format("--nproc-per-node: cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw IoError(fmt::format("--nproc-per-node: cannot find a free port on 127.0.0.1: {}", std::strerror(errno)));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::vector<std::string> self_arguments() {
  const std::string raw = io::file_read("/proc/self/cmdline");
  std::vector<std::string> args;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    args.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  if (!args.empty()) args.erase(args.begin());
  return args;
}

std::vector<std::string> arguments_without(const std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      ++i;  // and its value
      continue;
    }
    if (args[i].rfind(name + "=", 0) == 0) continue;
    out.push_back(args[i]);
  }
  return out;
}

void workers_run(const LaunchOptions& o) {
  const int port = free_loopback_port();
  std::vector<std::string> args = o.args;
  args.insert(args.begin(), "hearth");
  std::vector<char*> argv = c_strings(args);
  const pid_t parent = ::getpid();
  std::vector<Worker> workers(o.nproc);
  for (int rank = 0; rank < o.nproc; ++rank) {
    std::vector<std::string> env = worker_environment(rank, o, port);
    std::vector<char*> envp = c_strings(env);
    pid_t pid = ::fork();
    if (pid < 0) {
      for (int r = 0; r < rank; ++r) ::kill(workers[r].pid, SIGKILL);
      throw IoError(fmt::format("--nproc-per-node: cannot start worker {}: {}", rank, std::strerror(errno)));
    }
    if (pid == 0) {  // the child: only async-signal-safe calls until exec
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) _exit(128 + SIGTERM);  // the launcher died before prctl
      ::execve("/proc/self/exe", argv.data(), envp.data());
      _exit(127);
    }
    workers[rank].pid = pid;
  }
  log::info("finetune-lora: {} workers on 127.0.0.1:{} (pids {}), {} thread{} each", o.nproc, port,
            fmt::join(
                [&] {
                  std::vector<int> p;
                  for (const auto& w : workers) p.push_back(w.pid);
                  return p;
                }(),
                " "),
            o.threads, o.threads == 1 ? "" : "s");

  int forwarded = 0;  // the signal passed on to the workers
  std::optional<int> first_failed;
  std::vector<int> ended;  // ranks in the order they ended
  bool kill_pending = false;
  auto kill_at = std::chrono::steady_clock::now();
  int running = o.nproc;
  while (running > 0) {
    if (interrupt_requested() && !forwarded) {
      forwarded = interrupt_signal();
      for (const auto& w : workers)
        if (w.running) ::kill(w.pid, forwarded);
    }
    for (int rank = 0; rank < o.nproc; ++rank) {
      auto& w = workers[rank];
      int status = 0;
      if (!w.running || ::waitpid(w.pid, &status, WNOHANG) != w.pid) continue;
      w.running = false;
      --running;
      ended.push_back(rank);
      if (WIFSIGNALED(status)) w.signal = WTERMSIG(status);
      else w.code = WEXITSTATUS(status);
      const bool failed = w.signal != 0 || w.code != 0;
      if (failed) log::warn("finetune-lora: {}", worker_end(rank, w));
      if (failed && !first_failed) {
        first_failed = rank;
        kill_pending = true;
        kill_at = std::chrono::steady_clock::now() + o.timeout + std::chrono::seconds(5);
      }
    }
    if (kill_pending && running > 0 && std::chrono::steady_clock::now() >= kill_at) {
      for (int rank = 0; rank < o.nproc; ++rank)
        if (workers[rank].running) {
          log::warn("finetune-lora: worker {} (pid {}) has not stopped {} s after worker {} failed; killing it", rank,
                    workers[rank].pid, o.timeout.count() / 1000.0, *first_failed);
          ::kill(workers[rank].pid, SIGKILL);
        }
      kill_pending = false;
    }
    if (running > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  if (!first_failed) return;
  // The worker that failed for its own reason, in the order they ended: not one that stopped because another did
  // (exit 6), nor one that was stopped by the signal passed on.
  const int peer = static_cast<int>(ExitCode::kDistributed);
  for (int rank : ended) {
    const auto& w = workers[rank];
    const bool by_forward = forwarded && (w.signal == forwarded || w.code == 128 + forwarded || w.code == 130);
    if (w.code == 0 && w.signal == 0) continue;
    if (by_forward || w.code == peer) continue;
    if (w.signal)
      throw DistributedError(
          fmt::format("finetune-lora: {}; the run stopped (run the same command to resume "
                      "from the last checkpoint)",
                      worker_end(rank, w)));
    throw WorkerExitError(fmt::format("finetune-lora: {} (its error is above)", worker_end(rank, w)), w.code);
  }
  if (forwarded)
    throw InterruptedError(
        fmt::format("finetune-lora: the workers stopped on signal {} (rank 0 saved a checkpoint; "
                    "run the same command to resume)",
                    forwarded));
  throw DistributedError(
      fmt::format("finetune-lora: {} (its error is above)", worker_end(*first_failed, workers[*first_failed])));
}

}  // namespace hearth::train
