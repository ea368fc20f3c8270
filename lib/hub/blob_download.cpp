#include "hub/blob_download.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <openssl/evp.h>

#include "core/error.h"
#include "core/log.h"
#include "core/signals.h"

namespace hearth::hub {

namespace fs = std::filesystem;

namespace {

// The hash a Hub file is checked with, fed incrementally: sha256 of the bytes (LFS files), or git's blob id,
// sha1("blob <size>\0" + bytes), for the others. OpenSSL's libcrypto (cpp-httplib links it anyway) for speed.
class Digester {
 public:
  explicit Digester(const HubFile& f) : git_(f.lfs_sha256.empty()), size_(f.size), ctx_(EVP_MD_CTX_new()) {
    if (!ctx_) throw ResourceError("EVP_MD_CTX_new: out of memory");
    reset();
  }
  ~Digester() { EVP_MD_CTX_free(ctx_); }
  Digester(const Digester&) = delete;
  Digester& operator=(const Digester&) = delete;
  void reset() {
    EVP_DigestInit_ex(ctx_, git_ ? EVP_sha1() : EVP_sha256(), nullptr);
    if (git_) {
      std::string header = fmt::format("blob {}", size_);
      update(header.c_str(), header.size() + 1);  // with its NUL
    }
  }
  void update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    std::string out;
    for (unsigned i = 0; i < len; ++i) out += fmt::format("{:02x}", md[i]);
    return out;
  }

 private:
  bool git_;
  uint64_t size_;
  EVP_MD_CTX* ctx_;
};

// The partial download: BLOB.incomplete, open for the whole run.
class PartialFile {
 public:
  explicit PartialFile(fs::path path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(fmt::format("{}: cannot open: {}", path_.string(), std::strerror(errno)));
  }
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;
  uint64_t size() const { return static_cast<uint64_t>(::lseek(fd_, 0, SEEK_END)); }
  // Keeps the first n bytes and positions writes after them.
  void keep(uint64_t n) {
    if (::ftruncate(fd_, static_cast<off_t>(n)) != 0 || ::lseek(fd_, static_cast<off_t>(n), SEEK_SET) < 0)
      throw IoError(fmt::format("{}: cannot truncate: {}", path_.string(), std::strerror(errno)));
  }
  void write(const char* data, size_t size) {
    while (size > 0) {
      ssize_t n = ::write(fd_, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == ENOSPC || errno == EDQUOT))
        throw ResourceError(fmt::format("{}: disk full; free some space and run again to resume", path_.string()));
      if (n < 0) throw IoError(fmt::format("{}: cannot write: {}", path_.string(), std::strerror(errno)));
      data += n;
      size -= static_cast<size_t>(n);
    }
  }
  // Hashes the first n bytes (a resumed download's prefix).
  void hash_prefix(uint64_t n, Digester& d) const {
    std::vector<char> buf(1 << 20);
    for (uint64_t off = 0; off < n;) {
      ssize_t got = ::pread(fd_, buf.data(), std::min<uint64_t>(buf.size(), n - off), static_cast<off_t>(off));
      if (got <= 0) throw IoError(fmt::format("{}: cannot read: {}", path_.string(), std::strerror(errno)));
      d.update(buf.data(), static_cast<size_t>(got));
      off += static_cast<uint64_t>(got);
    }
  }
  void sync() {
    if (::fsync(fd_) != 0) throw IoError(fmt::format("{}: fsync: {}", path_.string(), std::strerror(errno)));
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
  int fd_ = -1;
};

// The first byte of a 206 reply's "Content-Range: bytes START-END/TOTAL"; -1 when absent or unreadable.
int64_t content_range_start(const std::string& value) {
  unsigned long long start = 0;
  if (std::sscanf(value.c_str(), "bytes %llu-", &start) != 1) return -1;
  return static_cast<int64_t>(start);
}

bool status_retryable(int status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

// Waits before retry `attempt` (0-based): 0.5 s, 1 s, 2 s, ... at most 10 s; a signal cuts it short.
void backoff(int attempt) {
  const auto wait = std::chrono::milliseconds(std::min(10000, 500 << std::min(attempt, 5)));
  const auto end = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < end) {
    interrupt_check("pull");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// State of one download across its attempts.
struct Transfer {
  const BlobJob& job;
  PartialFile& part;
  Digester& digest;
  const BlobProgress& progress;
  BlobResult& result;
  uint64_t have = 0;  // bytes in the partial file, all hashed

  void restart() {
    part.keep(0);
    digest.reset();
    have = 0;
  }
  // The body sink of one GET.
  bool receive(const HttpReply& head, const char* data, size_t size, bool& first) {
    if (first) {
      first = false;
      if (head.status == 200 && have > 0) restart();  // the server ignored Range: take it all again
      if (head.status == 206 && content_range_start(head.header("Content-Range")) != static_cast<int64_t>(have)) {
        restart();
        throw IoError(fmt::format("unexpected Content-Range '{}' for a request from byte {}",
                                  head.header("Content-Range"), have));
      }
    }
    if (have + size > job.file.size)
      throw FormatError(
          fmt::format("file {} of {}: the server sent more than the {} bytes the Hub lists; the "
                      "download was deleted",
                      job.file.path, job.repo, job.file.size));
    part.write(data, size);
    digest.update(data, size);
    have += size;
    result.received += size;
    if (progress) progress(have);
    return true;
  }
};

// One GET for the missing bytes. Returns the reply; status 0 and `broke` set when the connection failed or broke.
HttpReply attempt(Transfer& t, const HubConfig& c, std::string& broke) {
  HttpHeaders headers{{"Accept-Encoding", "identity"}};
  if (t.have > 0) headers.emplace("Range", fmt::format("bytes={}-", t.have));
  bool first = true;
  ++t.result.attempts;
  try {
    return http_get(t.job.url, headers, hub_http_options(c),
                    [&](const HttpReply& head, const char* d, size_t n) { return t.receive(head, d, n, first); });
  } catch (const IoError& e) {
    broke = e.what();
    return {};
  }
}

void verify(Transfer& t) {
  const HubFile& f = t.job.file;
  if (t.have != f.size)
    throw FormatError(
        fmt::format("file {} of {}: got {} bytes; expected {} (the Hub's listing); the download was "
                    "deleted",
                    f.path, t.job.repo, t.have, f.size));
  const std::string got = t.digest.hex(), want = f.lfs_sha256.empty() ? f.blob_id : f.lfs_sha256;
  if (got != want)
    throw FormatError(
        fmt::format("file {} of {}: checksum mismatch, {} {}; expected {} (the Hub's listing); the "
                    "download was deleted — run again to fetch it anew",
                    f.path, t.job.repo, f.lfs_sha256.empty() ? "git blob id" : "sha256", got, want));
}

void transfer_run(Transfer& t, const HubConfig& c, int retries) {
  const HubFile& f = t.job.file;
  for (int i = 0; t.have < f.size; ++i) {
    std::string broke;
    HttpReply r = attempt(t, c, broke);
    if (r.status == 416) {  // Range Not Satisfiable: the partial file is not a prefix of this file
      t.restart();
      broke = "HTTP 416 for the resumed range";
    } else if (broke.empty() && r.status != 200 && r.status != 206) {
      if (!status_retryable(r.status) || i >= retries)
        hub_error_throw(r, c, t.job.repo, fmt::format("file {} of {}", f.path, t.job.repo));
      broke = fmt::format("HTTP {}", r.status);
    } else if (broke.empty() && t.have < f.size) {
      broke = "the connection closed early";
    }
    if (broke.empty()) break;
    if (i >= retries)
      throw IoError(
          fmt::format("file {} of {}: the download stopped at {} of {} bytes after {} attempt(s) ({}); run "
                      "the same command again to resume",
                      f.path, t.job.repo, t.have, f.size, i + 1, broke));
    log::warn("{}: transfer stopped at {} of {} bytes ({}); retrying", f.path, t.have, f.size, broke);
    backoff(i);
  }
}

}  // namespace

std::string blob_hash_file(const fs::path& path, const HubFile& file) {
  Digester d(file);
  PartialFile p(path);
  p.hash_prefix(p.size(), d);
  return d.hex();
}

BlobResult blob_download(const BlobJob& job, const HubConfig& c, int retries, const BlobProgress& progress) {
  const fs::path partial_path = job.blob.string() + ".incomplete";
  std::error_code ec;
  fs::create_directories(job.blob.parent_path(), ec);
  if (ec) throw IoError(fmt::format("{}: cannot create: {}", job.blob.parent_path().string(), ec.message()));
  BlobResult result;
  PartialFile part(partial_path);
  Digester digest(job.file);
  Transfer t{job, part, digest, progress, result};
  try {
    t.have = part.size();
    if (t.have > job.file.size) t.have = 0;
    part.keep(t.have);
    part.hash_prefix(t.have, digest);
    result.resumed_from = t.have;
    if (progress) progress(t.have);
    transfer_run(t, c, retries);
    verify(t);
    part.sync();
  } catch (const FormatError&) {
    fs::remove(partial_path, ec);
    throw;
  }
  fs::rename(partial_path, job.blob, ec);
  if (ec) throw IoError(fmt::format("{}: cannot rename into place: {}", job.blob.string(), ec.message()));
  int dir = ::open(job.blob.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return result;
}

}  // namespace hearth::hub
