#include "data/shard.h"

#include "data/bytes.h"
#include "data/zstd_block.h"

namespace hearth::data {
namespace fs = std::filesystem;

ShardWriter::ShardWriter(fs::path path, int64_t seq_len, size_t block_bytes)
    : path_(std::move(path)), out_(path_), block_bytes_(block_bytes) {
  ByteWriter w;
  w.put_raw("HRTHSHRD", 8);
  w.put<uint32_t>(1);
  w.put<uint32_t>(static_cast<uint32_t>(seq_len));
  write(w.data());
}

void ShardWriter::write(const std::string& bytes) {
  out_.write(bytes.data(), bytes.size());
  file_hash_.update(bytes);
  offset_ += bytes.size();
}

void ShardWriter::add(const Sequence& s) {
  ByteWriter w;
  w.put<uint32_t>(static_cast<uint32_t>(s.tokens.size()));
  w.put<uint32_t>(static_cast<uint32_t>(s.doc_starts.size()));
  w.put_raw(s.tokens.data(), s.tokens.size() * sizeof(int32_t));
  w.put_raw(s.doc_starts.data(), s.doc_starts.size() * sizeof(uint32_t));
  w.put_raw(s.loss_mask.data(), s.loss_mask.size());
  block_ += w.data();
  ++block_n_;
  ++n_seqs_;
  if (block_.size() >= block_bytes_) flush_block();
}

void ShardWriter::flush_block() {
  if (block_n_ == 0) return;
  std::string frame = zstd_compress(block_);
  Digest d = sha256(frame);
  ByteWriter w;
  w.put<uint64_t>(offset_);
  w.put<uint64_t>(frame.size());
  w.put<uint64_t>(block_first_);
  w.put<uint32_t>(block_n_);
  w.put<uint32_t>(0);
  w.put_raw(d.data(), d.size());
  index_ += w.data();
  ++n_blocks_;
  write(frame);
  block_first_ = n_seqs_;
  block_n_ = 0;
  block_.clear();
}

ShardInfo ShardWriter::commit() {
  flush_block();
  uint64_t index_offset = offset_;
  ByteWriter idx;
  idx.put<uint64_t>(n_blocks_);
  idx.put_raw(index_.data(), index_.size());
  Digest index_hash = sha256(idx.data());
  write(idx.data());
  ByteWriter footer;
  footer.put<uint64_t>(index_offset);
  footer.put<uint64_t>(n_seqs_);
  footer.put_raw(index_hash.data(), index_hash.size());
  footer.put_raw("HRTHEND1", 8);
  write(footer.data());
  out_.commit();
  return {path_.filename().string(), n_seqs_, offset_, digest_hex(file_hash_.digest())};
}

}  // namespace hearth::data
