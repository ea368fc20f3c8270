// GGUF writer: validates everything first, then streams header, tensor infos and tensor data into an
// AtomicWriter, one tensor at a time. Layout as llama.cpp writes it (ggml/src/gguf.cpp): infos in the given
// order, data in the same order, every tensor padded with zeros to the alignment. Format: see gguf.h.
#include <limits>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/gguf.h"

namespace hearth::io {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxWriteAlignment = 65536;
constexpr size_t kMaxKeyLength = 65535;

void put_uint(std::string& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Checks the metadata; returns the alignment it asks for.
uint64_t check_metadata(const std::string& origin, const std::vector<GgufKv>& metadata) {
  uint64_t alignment = kGgufDefaultAlignment;
  std::set<std::string_view> keys;
  for (const auto& kv : metadata) {
    if (kv.key.empty() || kv.key.size() > kMaxKeyLength)
      throw ConfigError(
          fmt::format("{}: metadata key must have 1 to {} bytes; got {}", origin, kMaxKeyLength, kv.key.size()));
    if (!keys.insert(kv.key).second)
      throw ConfigError(fmt::format("{}: duplicate metadata key '{}'", origin, gguf_printable(kv.key)));
    if (kv.key == "general.alignment") {
      const auto v = kv.value.as_uint();
      if (kv.value.type() != GgufType::kU32 || *v == 0 || (*v & (*v - 1)) != 0 || *v > kMaxWriteAlignment)
        throw ConfigError(fmt::format("{}: metadata key 'general.alignment' must be a u32 power of two up to {}",
                                      origin, kMaxWriteAlignment));
      alignment = *v;
    }
  }
  return alignment;
}

// Checks one tensor; returns its byte count.
size_t check_tensor(const std::string& origin, const GgufTensorSource& t) {
  const std::string where = fmt::format("{}: tensor '{}'", origin, gguf_printable(t.name));
  if (t.name.empty() || t.name.size() > kGgufMaxTensorName)
    throw ConfigError(fmt::format("{}: name must have 1 to {} bytes (llama.cpp's limit); got {}", where,
                                  kGgufMaxTensorName, t.name.size()));
  if (t.dims.size() > 4) throw ConfigError(fmt::format("{}: at most 4 dims; got {}", where, t.dims.size()));
  const quant::GgmlTypeInfo* info = quant::ggml_type_find(static_cast<uint32_t>(t.type));
  if (!info) throw ConfigError(fmt::format("{}: unknown ggml type {}", where, static_cast<uint32_t>(t.type)));
  uint64_t numel = 1;
  for (int64_t d : t.dims) {
    if (d < 0 || static_cast<uint64_t>(d) > (uint64_t(1) << 62) ||
        (d != 0 && numel > (uint64_t(1) << 62) / static_cast<uint64_t>(d)))
      throw ConfigError(fmt::format("{}: dims must be non-negative and their product below 2^62", where));
    numel *= static_cast<uint64_t>(d);
  }
  const int64_t row = t.dims.empty() ? 1 : t.dims[0];
  if (row % info->block_size != 0)
    throw ConfigError(fmt::format("{}: row length ne[0] = {} is not a multiple of the {} block size {}", where, row,
                                  info->name, info->block_size));
  const uint64_t blocks = numel / static_cast<uint64_t>(info->block_size);
  if (blocks > std::numeric_limits<size_t>::max() / info->block_bytes)
    throw ConfigError(fmt::format("{}: byte size overflows", where));
  const size_t nbytes = static_cast<size_t>(blocks) * info->block_bytes;
  if (nbytes > 0 && !t.data && !t.produce) throw ConfigError(fmt::format("{}: neither data nor a producer", where));
  return nbytes;
}

// Header, metadata and tensor infos, padded to the alignment.
std::string encode_head(const std::vector<GgufKv>& metadata, const std::vector<GgufTensorSource>& tensors,
                        const std::vector<uint64_t>& offsets, uint64_t alignment) {
  std::string out = "GGUF";
  put_uint(out, kGgufVersion, 4);
  put_uint(out, tensors.size(), 8);
  put_uint(out, metadata.size(), 8);
  for (const auto& kv : metadata) {
    put_uint(out, kv.key.size(), 8);
    out += kv.key;
    put_uint(out, static_cast<uint32_t>(kv.value.type()), 4);
    kv.value.encode(out);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorSource& t = tensors[i];
    put_uint(out, t.name.size(), 8);
    out += t.name;
    put_uint(out, t.dims.size(), 4);
    for (int64_t d : t.dims) put_uint(out, static_cast<uint64_t>(d), 8);
    put_uint(out, static_cast<uint32_t>(t.type), 4);
    put_uint(out, offsets[i], 8);
  }
  out.resize(static_cast<size_t>(align_up(out.size(), alignment)), '\0');
  return out;
}

}  // namespace

void gguf_write(const fs::path& path, const std::vector<GgufKv>& metadata,
                const std::vector<GgufTensorSource>& tensors) {
  const std::string origin = path.string();
  const uint64_t alignment = check_metadata(origin, metadata);
  std::set<std::string_view> names;
  std::vector<size_t> sizes;
  std::vector<uint64_t> offsets;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    sizes.push_back(check_tensor(origin, t));
    if (!names.insert(t.name).second)
      throw ConfigError(fmt::format("{}: duplicate tensor name '{}'", origin, gguf_printable(t.name)));
    offsets.push_back(offset);
    offset = align_up(offset + sizes.back(), alignment);
  }

  AtomicWriter writer(path);
  const std::string head = encode_head(metadata, tensors, offsets, alignment);
  writer.write(head.data(), head.size());
  const std::string zeros(static_cast<size_t>(alignment), '\0');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const GgufTensorSource& t = tensors[i];
    if (t.data) {
      writer.write(t.data, sizes[i]);
    } else if (t.produce) {
      size_t written = 0;
      t.produce([&](const void* data, size_t size) {
        if (size > sizes[i] - written)
          throw ConfigError(
              fmt::format("{}: tensor '{}': producer emitted more than the {} bytes of its shape and type", origin,
                          gguf_printable(t.name), sizes[i]));
        writer.write(data, size);
        written += size;
      });
      if (written != sizes[i])
        throw ConfigError(fmt::format("{}: tensor '{}': producer emitted {} bytes; expected {}", origin,
                                      gguf_printable(t.name), written, sizes[i]));
    }
    writer.write(zeros.data(), static_cast<size_t>(align_up(sizes[i], alignment) - sizes[i]));
  }
  writer.commit();
}

}  // namespace hearth::io
