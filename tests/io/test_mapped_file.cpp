// MappedFile when its file changes underneath: a read past a truncated end neither crashes nor goes unnoticed,
// and a file written over in place is found by mapped_files_check(); a file replaced by rename is not damage.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "smaps.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  auto dir = fs::temp_directory_path() / ("hearth_test_mapped_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& p, size_t n, char fill) {
  std::ofstream(p, std::ios::binary) << std::string(n, fill);
}

}  // namespace

TEST_CASE("a mapped file truncated underneath reads as zeros and is reported, without SIGBUS", "[io]") {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const auto path = scratch() / "weights.bin";
  write_bytes(path, 4 * page, 'w');
  {
    auto file = io::MappedFile::open(path);
    CHECK(file->data()[3 * page + 7] == 'w');
    CHECK_FALSE(io::mapped_files_damaged());
    CHECK(io::mapped_files_check().empty());
    fs::resize_file(path, page);  // `truncate -s` on the file being used
    // Without the guard this read ends the process with SIGBUS (the page is past the file's end now).
    volatile unsigned char past = file->data()[3 * page + 7];
    CHECK(past == 0);
    CHECK(file->data()[page - 1] == 'w');  // before the new end: still the file
    CHECK(io::mapped_files_damaged());
    const std::string damage = io::mapped_files_damage();
    CHECK(damage.find(path.string()) != std::string::npos);
    CHECK(damage.find("truncated or written over") != std::string::npos);
  }
  // Unmapped: no live damage, but the process remembers it (a command's exit code).
  CHECK_FALSE(io::mapped_files_damaged());
  CHECK(io::mapped_files_damage().empty());
  CHECK(io::mapped_files_damage_seen().find(path.string()) != std::string::npos);
}

TEST_CASE("mapped_files_check finds a file written over in place, not one replaced by rename", "[io]") {
  const auto dir = scratch();
  const auto written = dir / "written.bin", renamed = dir / "renamed.bin", fresh = dir / "fresh.bin";
  write_bytes(written, 8192, 'a');
  write_bytes(renamed, 8192, 'a');
  auto w = io::MappedFile::open(written);
  auto r = io::MappedFile::open(renamed);
  CHECK(io::mapped_files_check().empty());
  write_bytes(fresh, 8192, 'b');
  fs::rename(fresh, renamed);  // the safe way: the mapping keeps the file it mapped
  CHECK(io::mapped_files_check().empty());
  CHECK(r->data()[100] == 'a');
  {
    std::fstream f(written, std::ios::in | std::ios::out | std::ios::binary);  // same size, new bytes, in place
    f.seekp(100);
    f << 'c';
  }
  struct timespec times[2] = {{0, UTIME_OMIT}, {1, 0}};  // a distinct mtime even on coarse-clock file systems
  REQUIRE(::utimensat(AT_FDCWD, written.c_str(), times, 0) == 0);
  const std::string damage = io::mapped_files_check();
  CHECK(damage.find(written.string()) != std::string::npos);
  CHECK(damage.find(renamed.string()) == std::string::npos);
  CHECK(io::mapped_files_damaged());
}

TEST_CASE("mapped_populate maps in the pages of a range of a live mapping, and nothing else", "[io]") {
  const fs::path path = scratch() / "populate.bin";
  write_bytes(path, size_t(16) << 20, 'p');
  auto file = io::MappedFile::open(path);
  const unsigned char* data = file->data();
  REQUIRE(test::smaps_kb(data, "Rss") == 0);  // nothing read yet
  io::mapped_populate(data + (size_t(5) << 20) + 100, size_t(2) << 20);  // [5 MiB + 100, 7 MiB + 100)
  // The range's pages, rounded out to whole pages, or to the page cache's folios (up to 2 MiB each with large
  // folios); not the rest of the 16 MiB file.
  const long populated = test::smaps_kb(data, "Rss");
  CHECK(populated >= 2048 + 4);
  CHECK(populated <= 2048 + 2 * 2048);
  std::vector<char> heap(size_t(1) << 20, 'h');
  io::mapped_populate(heap.data(), heap.size());  // not a file mapping: nothing happens
  io::mapped_populate(data + (size_t(15) << 20), size_t(2) << 20);  // runs past the end: not this mapping's range
  CHECK(test::smaps_kb(data, "Rss") == populated);
  CHECK(data[(size_t(6) << 20)] == 'p');
  file->release(data, file->size());
  CHECK(test::smaps_kb(data, "Rss") == 0);
}
