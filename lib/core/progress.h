// Progress reporting for long work: a redrawn bar on a terminal, periodic plain log lines otherwise.
//
// Writes to stderr only. Not thread-safe: one Progress is driven from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hearth {

class Progress {
 public:
  // `total` may be 0 when unknown. `unit` names what is counted ("tok", "files").
  Progress(std::string label, uint64_t total, std::string unit);
  ~Progress();
  // Sets the count done so far; redraws at most ~10 times a second (a log line every 10 s off-terminal).
  void update(uint64_t done, const std::string& suffix = "");
  // Final line; called by the destructor if not called before.
  void finish();

 private:
  void draw(bool final);
  std::string label_, unit_, suffix_;
  uint64_t total_, done_ = 0;
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// True when stderr is a terminal (progress bars are drawn only then).
bool stderr_is_tty();

}  // namespace hearth
