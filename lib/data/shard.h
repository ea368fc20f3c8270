// Shard files: sequences of one split, in independently zstd-compressed blocks with an index, so that any
// sequence can be read by decompressing only its block. Layout (little-endian; docs/datasets.md):
//
//   "HRTHSHRD" u32 version=1 u32 seq_len
//   block 0 .. block B-1        each one zstd frame (with content checksum) of its sequences, each sequence:
//                               u32 n_tokens, u32 n_doc_starts, i32 tokens[n], u32 doc_starts[m], u8 mask[n]
//   index                       u64 B, then per block: u64 offset, u64 size, u64 first_sequence,
//                               u32 n_sequences, u32 reserved, u8 sha256(block bytes)[32]
//   footer                      u64 index_offset, u64 n_sequences, u8 sha256(index)[32], "HRTHEND1"
//
// The manifest also records each shard's size and SHA-256 (of the whole file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "core/sha256.h"
#include "io/atomic_file.h"

namespace hearth::data {

struct ShardInfo {
  std::string file;  // name inside the dataset folder
  uint64_t sequences = 0, bytes = 0;
  std::string sha256;  // hex, of the whole file
};

// Writes one shard atomically (a temporary beside the target, renamed by commit()). Not thread-safe.
class ShardWriter {
 public:
  ShardWriter(std::filesystem::path path, int64_t seq_len, size_t block_bytes = 256 * 1024);
  void add(const Sequence& s);
  uint64_t sequences() const { return n_seqs_; }
  // Writes the index and footer, fsyncs and renames into place. Returns what the manifest records.
  ShardInfo commit();

 private:
  void write(const std::string& bytes);
  void flush_block();
  std::filesystem::path path_;
  io::AtomicWriter out_;
  Sha256 file_hash_;
  uint64_t offset_ = 0, n_seqs_ = 0, block_first_ = 0;
  uint32_t block_n_ = 0;
  size_t block_bytes_;
  std::string block_;
  std::string index_;
  uint64_t n_blocks_ = 0;
};

// Random access to one shard (memory-mapped). Thread-safe.
class ShardReader {
 public:
  // Maps and validates the header, index and footer. FormatError (naming the file) when malformed.
  explicit ShardReader(const std::filesystem::path& path);
  ~ShardReader();
  uint64_t sequences() const;
  int64_t seq_len() const;
  // Sequence `i` (< sequences()). FormatError naming the shard if the block's checksum does not match.
  Sequence get(uint64_t i) const;
  // Recomputes the SHA-256 of the whole file (hex).
  std::string file_sha256() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::data
