#include "io/huge_pages.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::io {

std::shared_ptr<uint8_t> huge_page_buffer(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t mapped = bytes + kHuge;  // room to start on a 2 MiB boundary
  void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    throw ResourceError(fmt::format("memory: cannot map {} MiB for weights: {}", bytes >> 20, std::strerror(errno)));
  const auto base = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = (base + kHuge - 1) / kHuge * kHuge;
  // Whole huge pages only: the last part of a 2 MiB page stays in small pages, so no buffer is resident beyond its
  // size (a fault anywhere in a huge-page region makes all 2 MiB resident). Advice: fine to fail (huge pages off).
  if (bytes >= kHuge) ::madvise(reinterpret_cast<void*>(aligned), bytes / kHuge * kHuge, MADV_HUGEPAGE);
  return std::shared_ptr<uint8_t>(reinterpret_cast<uint8_t*>(aligned), [p, mapped](uint8_t*) { ::munmap(p, mapped); });
}

}  // namespace hearth::io
