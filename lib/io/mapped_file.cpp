#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::io {
namespace {

// The guarded mappings. The handler reads begin/end and sets damaged without locks (async-signal-safe); the rest
// is guarded by `mu`. A slot is free while begin is 0.
struct Slot {
  std::atomic<uintptr_t> begin{0}, end{0};
  std::atomic<bool> damaged{false};
  // The file as mapped, for mapped_files_check().
  std::filesystem::path path;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
};
std::array<Slot, kGuardedMappings> g_slots;
std::mutex g_mu;
std::atomic<int> g_damaged{0};  // damaged live mappings
std::string g_damage_history;    // messages of damaged mappings since unmapped
uintptr_t g_page = 4096;
struct sigaction g_previous {};

// Gives back the whole pages of [begin, end) of a file mapping (read again from the file if touched later).
void pages_release(uintptr_t begin, uintptr_t end, uintptr_t page) {
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

// SIGBUS: a read inside a guarded mapping past its file's (new) end. The rest of that mapping becomes zero pages,
// so the read (and every later one) succeeds; the damage is reported by mapped_files_damage(). Any other SIGBUS
// goes where it went before this handler.
void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (auto& slot : g_slots) {
    const uintptr_t begin = slot.begin.load(std::memory_order_acquire), end = slot.end.load(std::memory_order_acquire);
    if (begin == 0 || addr < begin || addr >= end) continue;
    const uintptr_t from = addr & ~(g_page - 1), to = (end + g_page - 1) & ~(g_page - 1);
    void* p = ::mmap(reinterpret_cast<void*>(from), to - from, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) break;
    if (!slot.damaged.exchange(true)) g_damaged.fetch_add(1);
    return;
  }
  if ((g_previous.sa_flags & SA_SIGINFO) && g_previous.sa_sigaction) {
    g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
  } else {
    ::signal(SIGBUS, SIG_DFL);  // the faulting read runs again and ends the process, as without this handler
  }
}

void sigbus_install() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, &g_previous);
  });
}

// Registers a mapping; returns its slot, or -1 when every slot is taken (the mapping is then unguarded).
int guard(const void* data, size_t size, const std::filesystem::path& path, const struct stat& st) {
  sigbus_install();
  std::lock_guard<std::mutex> lock(g_mu);
  for (int i = 0; i < kGuardedMappings; ++i) {
    Slot& slot = g_slots[static_cast<size_t>(i)];
    if (slot.begin.load() != 0) continue;
    slot.path = path;
    slot.dev = st.st_dev;
    slot.ino = st.st_ino;
    slot.size = st.st_size;
    slot.mtime = st.st_mtim;
    slot.damaged = false;
    slot.end.store(reinterpret_cast<uintptr_t>(data) + size, std::memory_order_release);
    slot.begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    return i;
  }
  return -1;
}

std::string damage_message(const std::filesystem::path& path) {
  return fmt::format("{}: the file was truncated or written over while hearth had it mapped; what was read from it "
                     "can no longer be trusted (restart; replace model files by renaming a new file into place, "
                     "never by writing over them)",
                     path.string());
}

void unguard(int i) {
  if (i < 0) return;
  std::lock_guard<std::mutex> lock(g_mu);
  Slot& slot = g_slots[static_cast<size_t>(i)];
  slot.begin.store(0, std::memory_order_release);
  slot.end.store(0, std::memory_order_release);
  if (slot.damaged.exchange(false)) {
    g_damaged.fetch_sub(1);
    g_damage_history += (g_damage_history.empty() ? "" : "; ") + damage_message(slot.path);
  }
  slot.path.clear();
}


}  // namespace

bool mapped_files_damaged() { return g_damaged.load(std::memory_order_acquire) > 0; }

std::string mapped_files_damage() {
  if (!mapped_files_damaged()) return "";
  std::lock_guard<std::mutex> lock(g_mu);
  std::string out;
  for (const auto& slot : g_slots)
    if (slot.begin.load() != 0 && slot.damaged.load()) out += (out.empty() ? "" : "; ") + damage_message(slot.path);
  return out;
}

std::string mapped_files_damage_seen() {
  std::string now = mapped_files_damage();
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_damage_history.empty()) return now;
  return now.empty() ? g_damage_history : g_damage_history + "; " + now;
}

std::string mapped_files_check() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    for (auto& slot : g_slots) {
      if (slot.begin.load() == 0 || slot.damaged.load()) continue;
      struct stat now {};
      // Gone, or another file at the path (replaced by rename): the mapping still holds the file it mapped.
      if (::stat(slot.path.c_str(), &now) != 0 || now.st_dev != slot.dev || now.st_ino != slot.ino) continue;
      if (now.st_size != slot.size || now.st_mtim.tv_sec != slot.mtime.tv_sec ||
          now.st_mtim.tv_nsec != slot.mtime.tv_nsec)
        if (!slot.damaged.exchange(true)) g_damaged.fetch_add(1);
    }
  }
  return mapped_files_damage();
}

std::shared_ptr<MappedFile> MappedFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw IoError(fmt::format("{}: file not found", path.string()));
    throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(fmt::format("{}: not a regular file", path.string()));
  }
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = static_cast<size_t>(st.st_size);
  if (file->size_ > 0) {
    void* p = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw IoError(fmt::format("{}: mmap failed: {}", path.string(), std::strerror(err)));
    }
    file->data_ = static_cast<const unsigned char*>(p);
    file->slot_ = guard(p, file->size_, path, st);
  }
  ::close(fd);
  return file;
}

std::shared_ptr<MappedFile> MappedFile::from_bytes(std::string_view bytes, const std::filesystem::path& path) {
  std::shared_ptr<MappedFile> file(new MappedFile());
  file->path_ = path;
  file->size_ = bytes.size();
  if (!bytes.empty()) {  // like an empty mapped file: data() null, size() 0
    file->owned_.reset(new unsigned char[bytes.size()]);
    std::memcpy(file->owned_.get(), bytes.data(), bytes.size());
    file->data_ = file->owned_.get();
  }
  return file;
}

MappedFile::~MappedFile() {
  unguard(slot_);
  if (data_ && !owned_) ::munmap(const_cast<unsigned char*>(data_), size_);
}

namespace {

// Calls op(begin, end) on [p, p + n) if a live mapping holds it all, with the mapping kept alive meanwhile.
template <typename Op>
void with_live_mapping(const void* p, size_t n, const Op& op) {
  const auto begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  std::lock_guard<std::mutex> lock(g_mu);  // the mapping stays while its slot is held
  for (const Slot& slot : g_slots) {
    const uintptr_t lo = slot.begin.load(std::memory_order_acquire), hi = slot.end.load(std::memory_order_acquire);
    if (lo == 0 || begin < lo || end > hi) continue;
    op(begin, end);
    return;
  }
}

}  // namespace

void mapped_release(const void* p, size_t n) {
  with_live_mapping(p, n, [](uintptr_t begin, uintptr_t end) { pages_release(begin, end, g_page); });
}

void mapped_populate(const void* p, size_t n) {
#ifndef MADV_POPULATE_READ
  constexpr int MADV_POPULATE_READ = 22;  // Linux 5.14; older headers lack it
#endif
  with_live_mapping(p, n, [](uintptr_t begin, uintptr_t end) {  // every page the range touches
    const uintptr_t first = begin / g_page * g_page, last = (end + g_page - 1) / g_page * g_page;
    if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_READ);  // errors: faults
  });
}

void MappedFile::release(const void* p, size_t n) const {
  const auto begin = reinterpret_cast<uintptr_t>(p), end = begin + n;
  const auto lo = reinterpret_cast<uintptr_t>(data_), hi = lo + size_;
  if (owned_ || n == 0 || begin < lo || end > hi) return;
  pages_release(begin, end, static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE)));
}

}  // namespace hearth::io
