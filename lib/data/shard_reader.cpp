#include "data/shard.h"

#include <algorithm>
#include <cstring>

#include "data/bytes.h"
#include "data/zstd_block.h"
#include "io/mapped_file.h"

namespace hearth::data {
namespace fs = std::filesystem;

namespace {
constexpr size_t kHeader = 16, kFooter = 56, kIndexEntry = 64;

struct Block {
  uint64_t offset, size, first;
  uint32_t n;
  Digest sha;
};
}  // namespace

struct ShardReader::Impl {
  std::shared_ptr<io::MappedFile> file;
  std::string origin;
  int64_t seq_len = 0;
  uint64_t n_seqs = 0;
  std::vector<Block> blocks;
};

ShardReader::ShardReader(const fs::path& path) : impl_(std::make_unique<Impl>()) {
  impl_->file = io::MappedFile::open(path);
  impl_->origin = path.string();
  const std::string& origin = impl_->origin;
  std::string_view all(reinterpret_cast<const char*>(impl_->file->data()), impl_->file->size());
  if (all.size() < kHeader + kFooter || all.substr(0, 8) != "HRTHSHRD" || all.substr(all.size() - 8) != "HRTHEND1")
    throw FormatError(fmt::format("{}: not a hearth shard (bad magic or truncated)", origin));
  ByteReader head(all.substr(8, 8), origin);
  if (uint32_t v = head.get<uint32_t>(); v != 1)
    throw FormatError(fmt::format("{}: shard version; expected 1, got {}", origin, v));
  impl_->seq_len = head.get<uint32_t>();
  ByteReader foot(all.substr(all.size() - kFooter), origin);
  uint64_t index_offset = foot.get<uint64_t>();
  impl_->n_seqs = foot.get<uint64_t>();
  Digest index_hash;
  std::memcpy(index_hash.data(), foot.take(32), 32);
  if (index_offset < kHeader || index_offset > all.size() - kFooter)
    throw FormatError(fmt::format("{}: index offset {} outside the file", origin, index_offset));
  std::string_view index = all.substr(index_offset, all.size() - kFooter - index_offset);
  if (sha256(index) != index_hash)
    throw FormatError(fmt::format("{}: index checksum mismatch; the shard is corrupt", origin));
  ByteReader r(index, origin);
  uint64_t n_blocks = r.get<uint64_t>();
  if (n_blocks * kIndexEntry != index.size() - 8)
    throw FormatError(fmt::format("{}: index size; expected {} blocks", origin, n_blocks));
  uint64_t next_seq = 0;
  for (uint64_t b = 0; b < n_blocks; ++b) {
    Block blk{};
    blk.offset = r.get<uint64_t>();
    blk.size = r.get<uint64_t>();
    blk.first = r.get<uint64_t>();
    blk.n = r.get<uint32_t>();
    r.get<uint32_t>();
    std::memcpy(blk.sha.data(), r.take(32), 32);
    if (blk.offset < kHeader || blk.size > index_offset || blk.offset > index_offset - blk.size ||
        blk.first != next_seq || blk.n == 0)
      throw FormatError(fmt::format("{}: index entry {} is inconsistent", origin, b));
    next_seq += blk.n;
    impl_->blocks.push_back(blk);
  }
  if (next_seq != impl_->n_seqs)
    throw FormatError(fmt::format("{}: sequence count; expected {}, got {}", origin, impl_->n_seqs, next_seq));
}

ShardReader::~ShardReader() = default;
uint64_t ShardReader::sequences() const { return impl_->n_seqs; }
int64_t ShardReader::seq_len() const { return impl_->seq_len; }

Sequence ShardReader::get(uint64_t i) const {
  if (i >= impl_->n_seqs)
    throw std::out_of_range(fmt::format("{}: sequence {} of {}", impl_->origin, i, impl_->n_seqs));
  const auto& blocks = impl_->blocks;
  auto it = std::upper_bound(blocks.begin(), blocks.end(), i, [](uint64_t v, const Block& b) { return v < b.first; });
  const Block& blk = *(it - 1);
  std::string_view frame(reinterpret_cast<const char*>(impl_->file->data()) + blk.offset, blk.size);
  std::string where = fmt::format("{}: block at offset {}", impl_->origin, blk.offset);
  if (sha256(frame) != blk.sha) throw FormatError(fmt::format("{}: checksum mismatch; the shard is corrupt", where));
  std::string raw = zstd_decompress(frame, where, 1u << 30);
  ByteReader r(raw, where);
  Sequence s;
  for (uint64_t k = blk.first; k <= i; ++k) {
    uint32_t n = r.get<uint32_t>(), m = r.get<uint32_t>();
    if (n > static_cast<uint64_t>(impl_->seq_len) || m > n)
      throw FormatError(fmt::format("{}: sequence of {} tokens; expected at most {}", where, n, impl_->seq_len));
    if (k < i) {
      r.take(size_t(n) * 5 + size_t(m) * 4);
      continue;
    }
    s.tokens.resize(n);
    s.doc_starts.resize(m);
    s.loss_mask.resize(n);
    std::memcpy(s.tokens.data(), r.take(size_t(n) * 4), size_t(n) * 4);
    std::memcpy(s.doc_starts.data(), r.take(size_t(m) * 4), size_t(m) * 4);
    std::memcpy(s.loss_mask.data(), r.take(n), n);
  }
  return s;
}

std::string ShardReader::file_sha256() const {
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(impl_->file->data()), impl_->file->size()));
}

}  // namespace hearth::data
