// Fuzz target: the safetensors reader (io/safetensors.h) over arbitrary bytes — the 8-byte header length, the
// JSON header, each tensor's dtype, shape and data_offsets, __metadata__, the overlap check.
//
// The input is parsed from an exact-size copy in memory (MappedFile::from_bytes), so AddressSanitizer sees any
// read past its end. When the file is accepted, what callers rely on is checked: every tensor's bytes lie inside
// the input (and are read), its dimensions are ≥ 0 and nbytes = numel × dtype size; find() finds each name.
// Seeds: fuzz_seeds writes small hearth-written files and stories260K's tensor names with shrunken shapes.
#include <cstdint>

#include "fuzz_util.h"
#include "io/safetensors.h"

using namespace hearth;
using namespace hearth::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_expect_errors("safetensors", [&] {
    auto mapped = io::MappedFile::from_bytes(fuzz_bytes(data, size), "fuzz.safetensors");
    auto file = io::SafetensorsFile::open(mapped);
    const unsigned char* begin = mapped->data();
    const unsigned char* end = begin + mapped->size();
    for (const auto& t : file->tensors()) {
      for (int64_t d : t.shape) fuzz_require(d >= 0, "safetensors", "a dimension is negative");
      fuzz_require(static_cast<uint64_t>(t.numel()) * io::dtype_size(t.dtype) == t.nbytes, "safetensors",
                   "nbytes != numel x dtype size");
      const auto* p = static_cast<const unsigned char*>(t.data);
      fuzz_require(t.nbytes == 0 || (p >= begin && p + t.nbytes <= end), "safetensors",
                   "tensor bytes outside the file");
      fuzz_touch(p, t.nbytes);
      fuzz_require(file->find(t.name) == &t, "safetensors", "find() misses a listed tensor");
    }
    for (const auto& [key, value] : file->metadata()) (void)key, (void)value;
  });
  return 0;
}
