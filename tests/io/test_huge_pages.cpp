// io::huge_page_buffer: aligned, zero-filled, writable memory of its own; its whole 2 MiB pages are huge pages when the
// system's transparent huge pages allow madvise'd regions (checked in /proc/self/smaps), the rest is not.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <string>

#include "io/huge_pages.h"
#include "smaps.h"

using namespace hearth;

namespace {

// "always" or "madvise" when a MADV_HUGEPAGE region may get huge pages.
bool huge_pages_allowed() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(f, line);
  return line.find("[always]") != std::string::npos || line.find("[madvise]") != std::string::npos;
}

}  // namespace

TEST_CASE("huge_page_buffer: aligned, zeroed, writable, in huge pages where allowed", "[io]") {
  const size_t bytes = (size_t(5) << 20) + 12345;  // two whole huge pages and a part of a third
  auto buf = io::huge_page_buffer(bytes);
  REQUIRE(buf);
  CHECK(reinterpret_cast<uintptr_t>(buf.get()) % (size_t(2) << 20) == 0);
  uint64_t nonzero = 0;
  for (size_t i = 0; i < bytes; i += 4096) nonzero += buf.get()[i];
  nonzero += buf.get()[bytes - 1];
  CHECK(nonzero == 0);
  for (size_t i = 0; i < bytes; ++i) buf.get()[i] = static_cast<uint8_t>(i);
  CHECK(buf.get()[bytes - 1] == static_cast<uint8_t>(bytes - 1));
  const long huge = test::smaps_kb(buf.get(), "AnonHugePages");
  INFO("AnonHugePages " << huge << " kB");
  if (huge_pages_allowed()) {
    // The kernel may be short of free 2 MiB pages; then it falls back to small ones, which is not an error here.
    CHECK((huge == 0 || huge == 4096));
  } else {
    CHECK(huge == 0);
  }
  CHECK(huge <= 4096);  // never the partial third page
  auto small = io::huge_page_buffer(100);
  small.get()[99] = 1;
  CHECK(test::smaps_kb(small.get(), "AnonHugePages") == 0);
}
