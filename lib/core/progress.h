// Progress reporting for long work: a redrawn bar on a terminal, periodic plain log lines otherwise.
//
// Writes to stderr only, and nothing when the log level is above info (`--quiet`, `--log-level warn`).
// Not thread-safe: one Progress is driven from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hearth {

class Progress {
 public:
  // `total` may be 0 when unknown. `unit` names what is counted ("tok", "files"; "B" counts bytes, shown as
  // "1.5 GiB/4.0 GiB" and "12.3 MiB/s" with bytes_format()). `initial`: the count already
  // done before this Progress started (a resumed run); the rate counts only what is done from here.
  Progress(std::string label, uint64_t total, std::string unit, uint64_t initial = 0);
  ~Progress();
  // Sets the count done so far; redraws at most ~10 times a second (a log line every 10 s off-terminal).
  void update(uint64_t done, const std::string& suffix = "");
  // Final line (off a terminal: only when the last log line did not already say the same); called by the
  // destructor if not called before.
  void finish();
  // The line draw() writes (for tests): the counts, rate, the time left ("ETA 3m05s", when the total is known and
  // something was done) and the suffix, without terminal control codes.
  std::string line() const;

 private:
  void draw(bool final);
  std::string label_, unit_, suffix_;
  uint64_t total_, initial_, done_;
  std::string logged_;  // the last plain log line's text (off a terminal)
  bool tty_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// A byte count for people: "535 B", "14.9 KiB", "1.00 MiB", "4.20 GiB" (powers of 1024; three significant digits).
std::string bytes_format(double bytes);

// A duration left, as progress lines show it: "42s", "3m05s", "2h07m" (seconds rounded up; at least "1s").
std::string eta_format(double seconds);

// True when stderr is a terminal (progress bars are drawn only then).
bool stderr_is_tty();

}  // namespace hearth
