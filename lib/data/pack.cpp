#include "data/pack.h"

#include <algorithm>

namespace hearth::data {

Packer::Packer(int64_t seq_len, Sink sink) : seq_len_(seq_len), sink_(std::move(sink)) {}

void Packer::append(const TokenizedDoc& doc, size_t begin, size_t end, bool doc_start) {
  if (doc_start || cur_.tokens.empty()) cur_.doc_starts.push_back(static_cast<uint32_t>(cur_.tokens.size()));
  cur_.tokens.insert(cur_.tokens.end(), doc.tokens.begin() + begin, doc.tokens.begin() + end);
  cur_.loss_mask.insert(cur_.loss_mask.end(), doc.mask.begin() + begin, doc.mask.begin() + end);
  if (room() == 0) flush();
}

void Packer::flush() {
  if (cur_.tokens.empty()) return;
  ++stats_.sequences;
  stats_.tokens += cur_.tokens.size();
  stats_.targets += static_cast<uint64_t>(std::count(cur_.loss_mask.begin(), cur_.loss_mask.end(), 1));
  sink_(cur_);
  cur_ = Sequence{};
}

void Packer::add(const TokenizedDoc& doc) {
  size_t n = doc.tokens.size();
  if (n == 0) return;
  ++stats_.documents;
  if (doc.kind != RecordKind::kText) {
    size_t len = std::min(n, static_cast<size_t>(seq_len_));
    if (len < n) ++stats_.truncated;
    if (len > room()) flush();
    append(doc, 0, len, true);
    return;
  }
  bool first = true;
  size_t begin = 0;
  for (size_t b = 0; b <= doc.breaks.size(); ++b) {
    size_t end = b < doc.breaks.size() ? doc.breaks[b] : n;
    if (end <= begin) continue;
    if (end - begin > room()) flush();
    while (end - begin > room()) {  // longer than a whole sequence: cut at token boundaries
      size_t take = room();
      append(doc, begin, begin + take, first);
      first = false;
      begin += take;
    }
    append(doc, begin, end, first);
    first = false;
    begin = end;
  }
}

void Packer::finish() { flush(); }

}  // namespace hearth::data
