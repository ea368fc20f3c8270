// A field of /proc/self/smaps for the mapping that holds an address: what the kernel says about its pages.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace hearth::test {

// `field` ("Rss", "AnonHugePages", ...) in kB of the mapping that contains `p`; -1 when no mapping does.
inline long smaps_kb(const void* p, const std::string& field) {
  std::ifstream f("/proc/self/smaps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  const std::string key = field + ":";
  std::string line;
  bool inside = false;
  while (std::getline(f, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = addr >= lo && addr < hi;
      continue;
    }
    if (inside && line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  }
  return -1;
}

}  // namespace hearth::test
