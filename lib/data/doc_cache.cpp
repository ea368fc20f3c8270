#include "data/doc_cache.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "data/bytes.h"
#include "data/zstd_block.h"
#include "io/atomic_file.h"

namespace hearth::data {
namespace fs = std::filesystem;

namespace {
constexpr char kMagic[8] = {'H', 'R', 'T', 'H', 'D', 'O', 'C', '1'};
}

void doc_cache_write(const fs::path& path, const std::vector<CachedDoc>& docs) {
  ByteWriter w;
  w.put_raw(kMagic, 8);
  w.put<uint64_t>(docs.size());
  for (const auto& d : docs) {
    w.put_raw(d.key.data(), d.key.size());
    w.put<uint64_t>(d.line);
    w.put<uint8_t>(static_cast<uint8_t>(d.doc.kind));
    w.put_array(d.minhash);
    w.put_array(d.doc.tokens);
    w.put_array(d.doc.mask);
    w.put_array(d.doc.breaks);
  }
  std::string bytes = zstd_compress(w.data(), 1);
  // Temporary + rename, like io::atomic_write, but without an fsync per file: ingest syncs the whole
  // dataset folder once before it commits the manifest that references these caches (ingest.cpp).
  fs::path tmp = path;
  tmp += fmt::format(".tmp.{}.{:x}", ::getpid(), std::random_device{}());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("{}: cannot create: {}", tmp.string(), std::strerror(errno)));
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string msg = fmt::format("{}: write failed: {}", path.string(), std::strerror(errno));
      bool full = errno == ENOSPC;
      ::close(fd);
      ::unlink(tmp.c_str());
      if (full) throw ResourceError(msg);
      throw IoError(msg);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string msg = fmt::format("{}: rename failed: {}", path.string(), std::strerror(errno));
    ::unlink(tmp.c_str());
    throw IoError(msg);
  }
}

std::vector<CachedDoc> doc_cache_read(const fs::path& path) {
  std::string origin = path.string();
  std::string raw = zstd_decompress(io::file_read(path), origin);
  ByteReader r(raw, origin);
  if (std::memcmp(r.take(8), kMagic, 8) != 0) throw FormatError(fmt::format("{}: not a hearth document cache", origin));
  uint64_t n = r.get<uint64_t>();
  std::vector<CachedDoc> docs;
  for (uint64_t i = 0; i < n; ++i) {
    CachedDoc d;
    std::memcpy(d.key.data(), r.take(32), 32);
    d.line = r.get<uint64_t>();
    uint8_t kind = r.get<uint8_t>();
    if (kind > 2) throw FormatError(fmt::format("{}: document {}: unknown kind {}", origin, i, kind));
    d.doc.kind = static_cast<RecordKind>(kind);
    d.minhash = r.get_array<uint32_t>();
    d.doc.tokens = r.get_array<int32_t>();
    d.doc.mask = r.get_array<uint8_t>();
    d.doc.breaks = r.get_array<uint32_t>();
    if (d.doc.mask.size() != d.doc.tokens.size())
      throw FormatError(fmt::format("{}: document {}: mask and tokens differ in length", origin, i));
    docs.push_back(std::move(d));
  }
  if (!r.done()) throw FormatError(fmt::format("{}: trailing bytes after {} documents", origin, n));
  return docs;
}

}  // namespace hearth::data
