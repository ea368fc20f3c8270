// io::remove_tree against what the file system shows afterwards: a nested tree goes, a symbolic link is removed and
// never followed (its target stays), a missing path is 0 removed, an unremovable entry is an error naming the path.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/remove_tree.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

fs::path scratch(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("hearth_test_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("remove_tree removes a nested tree and counts its entries", "[io]") {
  const fs::path root = scratch("remove_tree") / "tree";
  fs::create_directories(root / "a" / "b");
  std::ofstream(root / "f1") << "x";
  std::ofstream(root / "a" / "f2") << "y";
  std::ofstream(root / "a" / "b" / "f3") << "z";
  CHECK(io::remove_tree(root) == 6);  // 3 files, 3 folders (root, a, b)
  CHECK(!fs::exists(root));
  CHECK(io::remove_tree(root) == 0);  // gone already: not an error
  std::ofstream(root.string() + ".file") << "w";
  CHECK(io::remove_tree(root.string() + ".file") == 1);
  CHECK(!fs::exists(root.string() + ".file"));
}

TEST_CASE("remove_tree removes links without following them", "[io]") {
  const fs::path dir = scratch("remove_tree_links");
  fs::create_directories(dir / "kept");
  std::ofstream(dir / "kept" / "precious") << "keep me";
  fs::create_directories(dir / "tree");
  fs::create_directory_symlink(dir / "kept", dir / "tree" / "link_to_folder");
  fs::create_symlink(dir / "kept" / "precious", dir / "tree" / "link_to_file");
  CHECK(io::remove_tree(dir / "tree") == 3);
  CHECK(!fs::exists(dir / "tree"));
  CHECK(fs::exists(dir / "kept" / "precious"));
  fs::create_directory_symlink(dir / "kept", dir / "root_link");  // the path itself a link: only the link goes
  CHECK(io::remove_tree(dir / "root_link") == 1);
  CHECK(fs::exists(dir / "kept" / "precious"));
}

TEST_CASE("remove_tree reports what it cannot remove", "[io]") {
  if (::geteuid() == 0) {
    WARN("running as root: permissions do not stop removal; skipped");
    return;
  }
  const fs::path dir = scratch("remove_tree_denied");
  fs::create_directories(dir / "locked");
  std::ofstream(dir / "locked" / "f") << "x";
  ::chmod((dir / "locked").c_str(), 0500);  // no write: its entries cannot be unlinked
  std::error_code ec;
  io::remove_tree(dir / "locked", ec);
  CHECK(ec == std::errc::permission_denied);
  CHECK_THROWS_AS(io::remove_tree(dir / "locked"), IoError);
  CHECK_THROWS_WITH(io::remove_tree(dir / "locked"), Catch::Contains("locked") && Catch::Contains("cannot remove"));
  ::chmod((dir / "locked").c_str(), 0700);
  CHECK(io::remove_tree(dir / "locked") == 2);
}
