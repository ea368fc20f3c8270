// The clock the chat-template goldens were made with (strftime_now): 2024-07-26 12:00 local time.
#pragma once

#include <ctime>

#include "chat/jinja_eval.h"

namespace hearth::test {

inline chat::JinjaRenderOptions fixed_clock() {
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 6;
  tm.tm_mday = 26;
  tm.tm_hour = 12;
  tm.tm_wday = 5;
  tm.tm_yday = 207;
  chat::JinjaRenderOptions options;
  options.now = tm;
  return options;
}

}  // namespace hearth::test
