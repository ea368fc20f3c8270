// Finding the files to ingest: walks SOURCE paths (files or directories, recursively) applying the skip
// rules: hidden files and folders, VCS folders, --include/--exclude globs, and a folder to leave out (the
// dataset being written). Not here: reading or classifying file contents (extract.h).
//
// Globs are fnmatch(3) patterns. A pattern without '/' matches the file name ("*.md"); a pattern with '/'
// matches the path relative to the SOURCE directory it was found under, where '*' also crosses '/'
// ("notes/*/draft-*.md", "archive/*").
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hearth::data {

struct SourceFile {
  std::filesystem::path path;  // absolute, lexically normal
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // modification time, nanoseconds since the epoch
};

struct WalkOptions {
  std::vector<std::string> include;  // empty: every file
  std::vector<std::string> exclude;
  std::filesystem::path skip_dir;  // never descend into this folder (absolute), e.g. the output dataset
  bool follow_symlinks = false;    // follow links to files outside their SOURCE folder too
};

// Every file under `sources`, sorted by path, without duplicates. Symlinks to files inside the SOURCE folder are
// followed; a link that leads out of it (to /etc/shadow, a private key) is skipped with a warning unless
// `follow_symlinks`; symlinks to folders are not followed (no loops). A file named as a SOURCE itself is read
// wherever it points. A SOURCE that does not exist is an IoError naming it; an unreadable folder
// inside a source is logged and skipped.
std::vector<SourceFile> sources_walk(const std::vector<std::filesystem::path>& sources, const WalkOptions& options);

// True when `name` (a file name) or `relative` (path under its SOURCE) matches the glob `pattern` by the
// rule above.
bool glob_match(const std::string& pattern, const std::string& name, const std::string& relative);

// Parses a size such as "64M", "512K", "1G" or "1000" (bytes). Throws ConfigError naming `option`.
uint64_t size_parse(const std::string& text, const std::string& option);

}  // namespace hearth::data
