#include "core/heap.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace hearth {

bool heap_keep_freed_blocks() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables && std::strstr(tunables, "glibc.malloc.")) return false;
  // A fixed mmap threshold also stops glibc adapting it (and the trim threshold) to the blocks freed.
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(kHeapMmapThreshold)) == 1 &&
         mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHeapTrimThreshold)) == 1;
}

}  // namespace hearth
