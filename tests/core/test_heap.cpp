// heap_keep_freed_blocks: a block of megabytes (a forward pass's activations) freed and allocated again is the same
// memory, already resident, not a fresh mapping the kernel faults in page by page.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

#include "core/heap.h"

namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Allocates `bytes`, writes every page (as an activation tensor is written), frees it; returns the page faults taken.
long use_block(size_t bytes) {
  const long before = minor_faults();
  auto* p = static_cast<char*>(std::malloc(bytes));
  REQUIRE(p != nullptr);
  volatile char* page = p;  // volatile: the writes stay
  for (size_t i = 0; i < bytes; i += 4096) page[i] = static_cast<char>(i);
  std::free(p);
  return minor_faults() - before;
}

}  // namespace

TEST_CASE("heap_keep_freed_blocks: a freed 30 MiB block is reused without page faults, and GLIBC_TUNABLES wins",
          "[core]") {
  // 30 MiB: above every block glibc's adaptive threshold can have seen freed in this process (it maps such a block
  // on its own, and unmaps it when freed), below hearth's threshold.
  constexpr size_t kBlock = size_t(30) << 20;
  static_assert(kBlock < hearth::kHeapMmapThreshold);
  const char* saved = std::getenv("GLIBC_TUNABLES");
  ::setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
  CHECK_FALSE(hearth::heap_keep_freed_blocks());  // the user's tunables: left alone
  ::unsetenv("GLIBC_TUNABLES");
  REQUIRE(hearth::heap_keep_freed_blocks());
  if (saved) ::setenv("GLIBC_TUNABLES", saved, 1);

  use_block(kBlock);  // the first use faults its pages in (the heap grows)
  const long again = use_block(kBlock);
  // Without the settings: ~7,700 faults (30 MiB in 4 KiB pages) every time. A few are allowed for the loop's own
  // bookkeeping.
  CHECK(again < 64);
}
