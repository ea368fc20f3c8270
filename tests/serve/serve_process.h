// Test helper: runs `hearth serve` as a child process on a free loopback port, as a user would, and talks
// to it with cpp-httplib's client. Only 127.0.0.1 is ever contacted.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "test_paths.h"

namespace hearth::test {

// Built with HEARTH_SANITIZE=address or thread (scripts/check.sh): the server runs several times slower,
// and the sanitizer's allocator keeps freed memory in quarantine (so RSS says nothing about leaks;
// LeakSanitizer checks those when the server exits).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

inline std::filesystem::path serve_scratch() {
  auto dir = std::filesystem::temp_directory_path() / ("hearth_test_serve_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ServeProcess {
 public:
  // Starts `hearth serve --model stories --port 0 ARGS...` and waits (up to 60 s) for "listening on".
  // The server gets SIGTERM if the thread that started it ends (create it on the test's own thread), so it
  // never outlives a test process that dies (a sanitizer report, a crash) without running the destructor.
  explicit ServeProcess(std::vector<std::string> args, bool with_model = true) {
    static int counter = 0;
    log_ = serve_scratch() / ("serve_" + std::to_string(++counter) + ".log");
    std::vector<std::string> argv = {hearth_binary().string(), "serve", "--port", "0"};
    if (with_model) argv.insert(argv.end(), {"--model", stories_dir().string()});
    argv.insert(argv.end(), args.begin(), args.end());
    // The scratch folder is named after this process's PID, which an earlier test process may have had: a stale
    // log of the same name would give an old server's port before the child has truncated it.
    std::filesystem::remove(log_);
    const pid_t parent = ::getpid();
    pid_ = fork();
    if (pid_ == 0) {
      if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || ::getppid() != parent) _exit(127);
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      dup2(fd, 1);
      std::vector<char*> cargs;
      for (auto& a : argv) cargs.push_back(a.data());
      cargs.push_back(nullptr);
      execv(cargs[0], cargs.data());
      _exit(127);
    }
    // The port must be followed by the rest of its line: the log may be read while the line is being written,
    // and a partly written "…:44425" would otherwise give port 44 (seen under full ctest load).
    std::regex re("listening on http://127\\.0\\.0\\.1:([0-9]+)[ \n]");
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::smatch m;
      std::string log = file_text(log_);
      if (std::regex_search(log, m, re)) port_ = std::stoi(m[1]);
      else if (exited()) break;
      else std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // "listening" is printed once the socket is bound; wait until the server really answers, so that a test's
    // first request does not race the start of the accept loop on a loaded machine.
    for (int i = 0; i < 100 && port_ > 0 && !exited(); ++i) {
      httplib::Client probe("127.0.0.1", port_);
      probe.set_connection_timeout(1, 0);
      if (auto r = probe.Get("/health"); r && r->status > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServeProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return file_text(log_); }
  httplib::Client client(const std::string& key = "") const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(kSanitized ? 600 : 60, 0);
    if (!key.empty()) c.set_bearer_token_auth(key.c_str());
    return c;
  }
  // True once the process has exited; exit_code() then holds its status.
  bool exited() {
    if (reaped_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return reaped_;
  }
  // Waits up to `seconds` for the exit; returns the exit code or -1.
  int wait_exit(double seconds) {
    for (int i = 0; i < seconds * 20; ++i) {
      if (exited()) return code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return exited() ? code_ : -1;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  // Resident memory of the server, in KiB (from /proc).
  long rss_kib() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
  }
  // A metric's value from /metrics ("name" or "name{labels}"); -1 when absent.
  double metric(const std::string& name, const std::string& key = "") const {
    auto r = client(key).Get("/metrics");
    if (!r) return -1;
    std::istringstream in(r->body);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    return -1;
  }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool reaped_ = false;
  int code_ = -1;
};

// POSTs JSON; returns {status, parsed body (or null)}.
inline std::pair<int, nlohmann::json> post_json(httplib::Client& c, const std::string& path,
                                                const nlohmann::json& body) {
  auto r = c.Post(path.c_str(), body.dump(), "application/json");
  if (!r) return {-1, nullptr};
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  return {r->status, j.is_discarded() ? nlohmann::json(r->body) : j};
}

// Runs a shell command; returns {exit code, stdout}.
inline std::pair<int, std::string> shell(const std::string& cmd) {
  auto out = serve_scratch() / "shell.out";
  int status = std::system((cmd + " >'" + out.string() + "' 2>/dev/null").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, file_text(out)};
}

}  // namespace hearth::test
