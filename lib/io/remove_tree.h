// Removing a file or a whole folder tree, as std::filesystem::remove_all does, without calling it.
//
// Why not remove_all: the pip wheels of libtorch 2.x (seen with 2.11.0+cu130) export their own copy of
// std::filesystem::remove_all, and the dynamic linker binds hearth's calls to it (libtorch comes before libstdc++ in
// the load order); that copy jumps to a null address. `hearth finetune-lora --fresh` crashed there on the GPU
// machine. This walks the tree with POSIX nftw() instead. Symbolic links are removed, never followed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <system_error>

namespace hearth::io {

// Removes `path` and everything under it. A missing path is not an error (0 removed). Returns how many entries were
// removed; on a failure sets `ec`, stops, and returns what was removed so far.
std::uintmax_t remove_tree(const std::filesystem::path& path, std::error_code& ec);
// The same; a failure throws IoError naming the path and the reason.
std::uintmax_t remove_tree(const std::filesystem::path& path);

}  // namespace hearth::io
