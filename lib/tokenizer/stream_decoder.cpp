// StreamDecoder: incremental decode for streaming output. See tokenizer.h.
//
// The same scheme as HF tokenizers' DecodeStream: decode the context chunk plus the new ids, emit what goes
// beyond the context once it does not end in U+FFFD (an incomplete character), then make the just-emitted
// chunk the new context. Every decoder hearth supports is prefix-stable apart from a trailing incomplete
// character, so the pieces add up to decode(all ids) — with one exception: ByteFallback turns a run of byte
// tokens that is not valid UTF-8 as a whole into one U+FFFD per byte, so a later byte token can change the
// text of bytes already emitted (<0x41> is "A", <0x41><0xFF> is two U+FFFD). HF's DecodeStream fails there
// (InvalidPrefix); here what was emitted stays and the stream goes on from the next whole character of the new
// text, so every piece is still valid UTF-8. (A Strip decoder of more than one leading character is not
// prefix-stable either: a context chunk of one "▁" decodes to "" alone but keeps a space in the whole text. No
// real tokenizer has one; HF's DecodeStream drops the same character.)
#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {

namespace {

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

// `text` after the context's `emitted` bytes. Normally text starts with the context's text; when a byte-fallback
// run changed it (see above), `emitted` may fall inside a character: start at the next whole one.
std::string text_after(const std::string& text, size_t emitted) {
  while (emitted < text.size() && (static_cast<unsigned char>(text[emitted]) & 0xC0) == 0x80) ++emitted;
  return text.substr(emitted);
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamDecoder::push(TokenId id) {
  ids_.push_back(id);
  const std::string text = tokenizer_->decode(ids_, skip_special_);
  if (text.size() <= emitted_bytes_ || ends_with_replacement(text)) return {};
  std::string out = text_after(text, emitted_bytes_);
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  emitted_bytes_ = tokenizer_->decode(ids_, skip_special_).size();
  prefix_index_ = new_prefix_index;
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  if (!ids_.empty()) {
    const std::string text = tokenizer_->decode(ids_, skip_special_);
    if (text.size() > emitted_bytes_) out = text_after(text, emitted_bytes_);
  }
  ids_.clear();
  emitted_bytes_ = 0;
  prefix_index_ = 0;
  return out;
}

}  // namespace hearth::tokenizer
