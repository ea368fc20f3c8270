// Helpers shared by the lib/data tests: scratch folders and files.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_paths.h"

namespace hearth::test {

// A fresh, empty folder under the system temp dir, unique to this process and `name`.
inline std::filesystem::path data_scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("hearth_test_data_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void file_put(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}

inline std::filesystem::path data_fixtures() { return source_dir() / "tests" / "data" / "fixtures"; }

}  // namespace hearth::test
