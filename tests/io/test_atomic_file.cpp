// Atomic writes: the target is either the old file or the complete new one; no temporaries are left.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json_file.h"

using namespace hearth;
namespace fs = std::filesystem;

TEST_CASE("atomic_write replaces a file and leaves no temporary", "[io]") {
  auto dir = fs::temp_directory_path() / ("hearth_test_atomic_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto path = dir / "out.txt";
  io::atomic_write(path, "first");
  io::atomic_write(path, "second, longer");
  CHECK(io::file_read(path) == "second, longer");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) entries += e.path().filename() == "out.txt" ? 1 : 100;
  CHECK(entries == 1);
}

TEST_CASE("an uncommitted AtomicWriter leaves the old file intact", "[io]") {
  auto dir = fs::temp_directory_path() / ("hearth_test_atomic2_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto path = dir / "keep.txt";
  io::atomic_write(path, "old");
  {
    io::AtomicWriter w(path);
    w.write("new data", 8);
    // destroyed without commit(), as when an exception unwinds
  }
  CHECK(io::file_read(path) == "old");
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
}

TEST_CASE("file errors are IoError/FormatError naming the path", "[io]") {
  CHECK_THROWS_AS(io::file_read("/nonexistent/hearth/file"), IoError);
  CHECK_THROWS_WITH(io::file_read("/nonexistent/hearth/file"), Catch::Matchers::Contains("/nonexistent/hearth/file"));
  CHECK_THROWS_AS(io::atomic_write("/nonexistent/dir/file", "x"), IoError);
  CHECK_THROWS_AS(io::json_parse("{\"a\": ", "x.json"), FormatError);
  CHECK_THROWS_WITH(io::json_parse("{\"a\": ", "x.json"), Catch::Matchers::Contains("x.json"));
}
