// See remove_tree.h for why this does not call std::filesystem::remove_all.
#include "io/remove_tree.h"

#include <ftw.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "core/error.h"

namespace hearth::io {
namespace {

// nftw() passes no user pointer: the walk's state lives in these, one walk per thread at a time.
thread_local std::uintmax_t t_removed = 0;
thread_local int t_errno = 0;

int remove_entry(const char* p, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DNR || type == FTW_NS) {  // a folder we cannot read, or an entry we cannot stat
    t_errno = errno ? errno : EACCES;
    return 1;
  }
  if ((type == FTW_DP ? ::rmdir(p) : ::unlink(p)) != 0) {
    t_errno = errno;
    return 1;
  }
  ++t_removed;
  return 0;
}

}  // namespace

std::uintmax_t remove_tree(const std::filesystem::path& path, std::error_code& ec) {
  ec.clear();
  t_removed = 0;
  t_errno = 0;
  // FTW_DEPTH: a folder after its contents; FTW_PHYS: links are entries, not followed.
  const int r = ::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (r == -1 && errno == ENOENT && t_removed == 0 && t_errno == 0) return 0;  // nothing there
  if (r != 0) ec = std::error_code(t_errno ? t_errno : errno, std::generic_category());
  return t_removed;
}

std::uintmax_t remove_tree(const std::filesystem::path& path) {
  std::error_code ec;
  const auto n = remove_tree(path, ec);
  if (ec) throw IoError(fmt::format("{}: cannot remove: {}", path.string(), ec.message()));
  return n;
}

}  // namespace hearth::io
