#include "core/progress.h"

#include <cmath>

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <fmt/format.h>

#include "core/log.h"

namespace hearth {

bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::string label, uint64_t total, std::string unit, uint64_t initial)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      initial_(initial),
      done_(initial),
      tty_(stderr_is_tty()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

void Progress::update(uint64_t done, const std::string& suffix) {
  done_ = done;
  suffix_ = suffix;
  auto now = std::chrono::steady_clock::now();
  auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000);
  if (now - last_draw_ >= interval) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

std::string eta_format(double seconds) {
  const auto s = static_cast<long long>(std::max(1.0, std::ceil(seconds)));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string bytes_format(double bytes) {
  static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f} B", bytes);
  const int decimals = bytes < 10 ? 2 : bytes < 100 ? 1 : 0;
  return fmt::format("{:.{}f} {}", bytes, decimals, kUnits[u]);
}

namespace {
// "60/100 steps" or "1.50 GiB/4.00 GiB" (unit "B"); without a total, only the count.
std::string counts_format(uint64_t done, uint64_t total, const std::string& unit) {
  if (unit == "B") {
    return total ? bytes_format(static_cast<double>(done)) + "/" + bytes_format(static_cast<double>(total))
                 : bytes_format(static_cast<double>(done));
  }
  return total ? fmt::format("{}/{} {}", done, total, unit) : fmt::format("{} {}", done, unit);
}

// "12.3 steps/s" or "12.3 MiB/s" (unit "B").
std::string rate_format(double rate, const std::string& unit) {
  return unit == "B" ? bytes_format(rate) + "/s" : fmt::format("{:.1f} {}/s", rate, unit);
}

// " ETA 3m05s" while the total is known, something was done and something is left; else "".
std::string eta_part(uint64_t done, uint64_t total, double rate) {
  if (total == 0 || done >= total || rate <= 0) return "";
  return " ETA " + eta_format(static_cast<double>(total - done) / rate);
}
}  // namespace

std::string Progress::line() const {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(done_ - std::min(done_, initial_)) / secs : 0.0;
  return fmt::format("{}: {} ({}, {:.1f} s{}){}{}", label_, counts_format(done_, total_, unit_), rate_format(rate, unit_),
                     secs, eta_part(done_, total_, rate), suffix_.empty() ? "" : " ", suffix_);
}

void Progress::draw(bool final) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(done_ - std::min(done_, initial_)) / secs : 0.0;
  const std::string counts = counts_format(done_, total_, unit_);
  if (log::level() > log::Level::kInfo) return;  // --quiet
  if (!tty_) {
    // The final line repeats nothing: when the last periodic line already showed this count, it is the end.
    const std::string key = counts + "|" + suffix_;
    if (final && key == logged_) return;
    logged_ = key;
    log::info("{}", line());
    return;
  }
  std::string bar;
  if (total_) {
    constexpr int kWidth = 30;
    int filled = static_cast<int>(kWidth * std::min<double>(1.0, double(done_) / total_));
    bar = "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] ";
  }
  std::string line = fmt::format("\r{} {}{} {}{} {}\x1b[K", label_, bar, counts, rate_format(rate, unit_),
                                 final ? "" : eta_part(done_, total_, rate), suffix_);
  if (final) line += "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace hearth
