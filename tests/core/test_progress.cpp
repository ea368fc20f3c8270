// Progress off a terminal (as under ctest or cron): the rate of a resumed count, and the final line once.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include "core/log.h"
#include "core/progress.h"

using namespace hearth;

namespace {

// What `fn` writes to stderr (fd 2).
template <class F>
std::string stderr_of(F&& fn) {
  char path[] = "/tmp/hearth_test_progress_XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  std::fflush(stderr);
  int saved = ::dup(2);
  ::dup2(fd, 2);
  fn();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

double rate_of(const std::string& line) {
  std::smatch m;
  REQUIRE(std::regex_search(line, m, std::regex(R"(\(([0-9.]+) steps/s)")));
  return std::stod(m[1]);
}

}  // namespace

TEST_CASE("a resumed Progress counts its rate from where it resumed", "[core]") {
  REQUIRE_FALSE(stderr_is_tty());  // the plain-line mode
  Progress p("finetune", 100, "steps", 50);  // resumed at step 50
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  p.update(60);
  // 10 steps in >= 0.2 s: at most 50 steps/s (counting from 0 it claimed 60 / 0.2 = 300).
  CHECK(rate_of(p.line()) <= 50.0);
  CHECK(p.line().find("60/100 steps") != std::string::npos);
  stderr_of([&] { p.finish(); });
}

TEST_CASE("Progress prints its final line once", "[core]") {
  const std::string out = stderr_of([] {
    Progress p("ingest", 3, "files");
    std::this_thread::sleep_for(std::chrono::milliseconds(10100));  // off a terminal, a line every 10 s
    p.update(3);  // the periodic line, already at the end
    p.finish();   // says nothing new: not printed again
    p.finish();
  });
  size_t lines = 0;
  for (size_t pos = 0; (pos = out.find("ingest: 3/3 files", pos)) != std::string::npos; ++pos) ++lines;
  CHECK(lines == 1);
}

TEST_CASE("Progress shows the time left when the total is known", "[core]") {
  CHECK(eta_format(0.2) == "1s");
  CHECK(eta_format(42) == "42s");
  CHECK(eta_format(59.5) == "1m00s");
  CHECK(eta_format(185) == "3m05s");
  CHECK(eta_format(7620) == "2h07m");
  // 10 of 100 done in ~0.2 s: ~1.8 s left.
  Progress p("train", 100, "steps");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  p.update(10);
  std::smatch m;
  const std::string line = p.line();
  INFO(line);
  REQUIRE(std::regex_search(line, m, std::regex(R"( ETA (\d+)s\))")));
  CHECK(std::stoi(m[1]) >= 1);
  CHECK(std::stoi(m[1]) <= 3);
  // Unknown total, or done: no ETA.
  Progress unknown("ingest", 0, "files");
  unknown.update(5);
  CHECK(unknown.line().find("ETA") == std::string::npos);
  p.update(100);
  CHECK(p.line().find("ETA") == std::string::npos);
  p.finish();
  unknown.finish();
}

TEST_CASE("Progress writes nothing above the info log level (--quiet)", "[core]") {
  const auto before = log::level();
  log::set_level(log::Level::kError);
  const std::string out = stderr_of([] {
    Progress p("quiet", 10, "steps");
    p.update(10);
    p.finish();
  });
  log::set_level(before);
  CHECK(out.empty());
}

TEST_CASE("byte counts read as people write them, in progress lines too", "[core]") {
  CHECK(bytes_format(0) == "0 B");
  CHECK(bytes_format(535) == "535 B");
  CHECK(bytes_format(15297) == "14.9 KiB");
  CHECK(bytes_format(1048576) == "1.00 MiB");
  CHECK(bytes_format(4.2 * 1073741824.0) == "4.20 GiB");
  Progress p("pull org/name", 2097152, "B", 1048576);
  p.update(1572864);
  CHECK(p.line().find("pull org/name: 1.50 MiB/2.00 MiB (") != std::string::npos);
  CHECK(p.line().find("/s, ") != std::string::npos);
  stderr_of([&] { p.finish(); });
}
