// Packing tokenized documents into training sequences of at most seq_len tokens.
//
// Documents are appended in order to the current sequence. A plain text may continue into the next sequence,
// preferably at a paragraph start (TokenizedDoc::breaks): a paragraph that does not fit in the space left
// starts the next sequence; one longer than a whole sequence is cut at token boundaries. A chat or
// prompt/completion record is never split: if it does not fit in the space left it starts the next sequence,
// and if it is longer than seq_len it is truncated to seq_len tokens (counted). So a sequence can be shorter
// than seq_len. doc_starts lists where each document (or the continuation of one) starts; it always
// begins with 0.
#pragma once

#include <cstdint>
#include <functional>

#include "data/dataset.h"
#include "data/encode.h"

namespace hearth::data {

struct PackStats {
  uint64_t sequences = 0, tokens = 0, targets = 0, documents = 0, truncated = 0;
};

// Not thread-safe.
class Packer {
 public:
  using Sink = std::function<void(const Sequence&)>;
  Packer(int64_t seq_len, Sink sink);
  void add(const TokenizedDoc& doc);
  // Emits the last, partly filled sequence.
  void finish();
  const PackStats& stats() const { return stats_; }

 private:
  size_t room() const { return static_cast<size_t>(seq_len_) - cur_.tokens.size(); }
  void append(const TokenizedDoc& doc, size_t begin, size_t end, bool doc_start);
  void flush();
  int64_t seq_len_;
  Sink sink_;
  Sequence cur_;
  PackStats stats_;
};

}  // namespace hearth::data
