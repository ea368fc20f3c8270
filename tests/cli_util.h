// Running the hearth binary from end-to-end tests: exit code, stdout and stderr; background runs.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "io/atomic_file.h"
#include "test_paths.h"

namespace hearth::test {

struct Run {
  int code;
  std::string out, err;
};

// A per-process scratch folder under the system temp dir (`name` makes it per test).
inline std::filesystem::path scratch(const std::string& name = "cli") {
  auto dir = std::filesystem::temp_directory_path() / ("hearth_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// Runs `hearth ARGS` through the shell; captures exit code, stdout and stderr.
inline Run run_hearth(const std::string& args, const std::string& env = "") {
  auto out = scratch() / "stdout", err = scratch() / "stderr";
  std::string cmd = env + " " + quote(hearth_binary()) + " " + args + " >" + quote(out) + " 2>" + quote(err);
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, io::file_read(out), io::file_read(err)};
}

// Starts `hearth ARGS` in the background. Its PID goes to DIR/pid and, when it ends, its exit code to DIR/rc.
inline void spawn_hearth(const std::string& args, const std::filesystem::path& dir) {
  std::filesystem::remove(dir / "pid");
  std::filesystem::remove(dir / "rc");
  std::string cmd = "( " + quote(hearth_binary()) + " " + args + " >" + quote(dir / "bg.out") + " 2>" +
                    quote(dir / "bg.err") + " & echo $! > " + quote(dir / "pid.tmp") + "; mv " +
                    quote(dir / "pid.tmp") + " " + quote(dir / "pid") + "; wait $!; echo $? > " +
                    quote(dir / "rc.tmp") + "; mv " + quote(dir / "rc.tmp") + " " + quote(dir / "rc") + " ) &";
  std::system(cmd.c_str());
}

// Waits (polling) until `path` exists; false after `seconds`.
inline bool wait_for(const std::filesystem::path& path, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (std::filesystem::exists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::filesystem::exists(path);
}

inline int read_int(const std::filesystem::path& path) { return std::stoi(io::file_read(path)); }

}  // namespace hearth::test
