#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

#include "core/error.h"

namespace hearth::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mutex;
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

Level level_parse(std::string_view text, std::string_view option) {
  if (text == "debug") return Level::kDebug;
  if (text == "info") return Level::kInfo;
  if (text == "warn") return Level::kWarn;
  if (text == "error") return Level::kError;
  if (text == "off") return Level::kOff;
  throw ConfigError(fmt::format("{}: unknown log level; expected debug|info|warn|error|off, got '{}'", option, text));
}

void write(Level level, std::string_view message) {
  static constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
  std::string line = fmt::format("hearth [{}] {}\n", kNames[static_cast<int>(level)], message);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace hearth::log
