// StreamDecoder: incremental decode for streaming output. See tokenizer.h.
//
// The same scheme as HF tokenizers' DecodeStream: decode the context chunk plus the new ids, emit what goes
// beyond the context once it does not end in an incomplete character, then make the just-emitted chunk the new
// context. DecodeStream holds back whenever the text ends in U+FFFD; here only while the ids' bytes end in a
// character that more bytes could still complete (utf8_unfinished_tail), and then only the tokens from the one
// where that character starts: bytes that no continuation makes valid (a model emitting stray continuation or
// lead bytes) are final U+FFFD and go out at once. Held, a run of them stalled a stream until its end.
//
// Every decoder hearth supports is prefix-stable apart from a trailing incomplete character, so the pieces add up
// to decode(all ids) — with one exception: ByteFallback turns a run of byte tokens that is not valid UTF-8 as a
// whole into one U+FFFD per byte, so a later byte token can change the text of bytes already emitted (<0x41> is
// "A", <0x41><0xFF> is two U+FFFD). HF's DecodeStream fails there (InvalidPrefix); here what was emitted stays and
// the stream goes on from the next whole character of the new text, so every piece is still valid UTF-8. (A Strip
// decoder of more than one leading character is not prefix-stable either: a context chunk of one "▁" decodes to ""
// alone but keeps a space in the whole text. No real tokenizer has one; HF's DecodeStream drops the same
// character.)
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

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

// How many of ids_ may be emitted: all of them, or, when their bytes end inside a character that later bytes may
// complete, those before the token where that character starts. Only the last 3 bytes matter; the context chunk
// never ends inside such a character (it was emitted, and bytes after it made its end final).
size_t StreamDecoder::emittable() const {
  std::string tail;
  std::vector<size_t> sizes;  // the bytes of each token in `tail`, the last token first
  for (size_t i = ids_.size(); i > prefix_index_ && tail.size() < 3; --i) {
    const auto bytes = tokenizer_->token_bytes(ids_[i - 1]);
    if (!bytes) {
      if (tokenizer_->is_special(ids_[i - 1])) break;  // whole text: nothing before it continues past it
      return prefix_index_;                            // bytes unknown: hold, as DecodeStream does
    }
    tail.insert(0, *bytes);
    sizes.push_back(bytes->size());
  }
  const size_t unfinished = utf8_unfinished_tail(tail);
  // Back from the end until the tokens passed hold the unfinished bytes: the last one passed holds their lead.
  size_t token = ids_.size();
  for (size_t k = 0, covered = 0; covered < unfinished; covered += sizes[k++]) --token;
  return token;
}

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamDecoder::push(TokenId id) {
  ids_.push_back(id);
  std::string text = tokenizer_->decode(ids_, skip_special_);
  if (text.size() <= emitted_bytes_) return {};
  size_t cut = ids_.size();
  if (ends_with_replacement(text)) {  // maybe an unfinished character: emit the tokens before it only
    cut = emittable();
    if (cut <= prefix_index_) return {};
    if (cut < ids_.size()) {
      text = tokenizer_->decode({ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(cut)}, skip_special_);
      if (text.size() <= emitted_bytes_) return {};
    }
  }
  std::string out = text_after(text, emitted_bytes_);
  // ids_[prefix_index_, cut) become the context; the ids after them stay pending.
  const size_t chunk = cut - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  emitted_bytes_ =
      tokenizer_->decode({ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(chunk)}, skip_special_).size();
  prefix_index_ = chunk;
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
