#include "data/encode.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "chat/chat_template.h"
#include "chat/prompt.h"
#include "core/error.h"
#include "data/text_util.h"

namespace hearth::data {
using nlohmann::json;
using tokenizer::EncodeOptions;

namespace {

const EncodeOptions kPlain{/*add_special_tokens=*/false, /*parse_special=*/false};

json messages_json(const std::vector<Message>& messages, size_t n) {
  json arr = json::array();
  for (size_t i = 0; i < n; ++i) arr.push_back({{"role", messages[i].role}, {"content", messages[i].content}});
  return arr;
}

void append(std::vector<int32_t>& dst, const std::vector<int32_t>& src) {
  dst.insert(dst.end(), src.begin(), src.end());
}

// Marks tokens whose [start, end) byte span overlaps [s, e).
void mask_span(const std::vector<size_t>& ends, size_t s, size_t e, std::vector<uint8_t>& mask) {
  size_t start = 0;
  for (size_t k = 0; k < ends.size(); ++k) {
    size_t end = ends[k];
    bool in = end > start ? (end > s && start < e) : (start >= s && start < e);
    if (in) mask[k] = 1;
    start = end;
  }
}

}  // namespace

RecordEncoder::RecordEncoder(const tokenizer::Tokenizer& tokenizer, std::string origin, TrainOn train_on,
                             int64_t seq_len)
    : tok_(tokenizer), origin_(std::move(origin)), train_on_(train_on), seq_len_(seq_len) {
  auto eos = tok_.eos_id();
  if (!eos) throw ConfigError(fmt::format("{}: the tokenizer has no EOS token; expected eos_token to be set", origin_));
  eos_ = *eos;
  prefix_ = tok_.encode("", EncodeOptions{true, false});
  std::string a = "First paragraph, with words.\n\n", b = "Second one: more words here.\n\n";
  auto joint = tok_.encode(a + b, kPlain), pa = tok_.encode(a, kPlain), pb = tok_.encode(b, kPlain);
  append(pa, pb);
  separable_ = joint == pa;
  specials_ = tok_.special_tokens();
}

TokenizedDoc RecordEncoder::encode(const Record& record) const {
  switch (record.kind) {
    case RecordKind::kText: return encode_text(record.text);
    case RecordKind::kChat: return encode_chat(record);
    case RecordKind::kCompletion: return encode_completion(record);
  }
  throw Error("encode: unknown record kind");
}

TokenizedDoc RecordEncoder::encode_text(const std::string& text) const {
  TokenizedDoc d;
  d.kind = RecordKind::kText;
  d.tokens = prefix_;
  bool fits = static_cast<int64_t>(text.size() + prefix_.size() + 1) <= seq_len_;
  if (fits || !separable_) {
    append(d.tokens, tok_.encode(text, kPlain));
  } else {
    size_t pos = 0;
    while (pos < text.size()) {
      size_t sep = text.find("\n\n", pos);
      size_t end = sep == std::string::npos ? text.size() : sep + 2;
      if (pos > 0) d.breaks.push_back(static_cast<uint32_t>(d.tokens.size()));
      append(d.tokens, tok_.encode(std::string_view(text).substr(pos, end - pos), kPlain));
      pos = end;
    }
  }
  d.tokens.push_back(eos_);
  d.mask.assign(d.tokens.size(), 1);
  std::fill(d.mask.begin(), d.mask.begin() + static_cast<std::ptrdiff_t>(prefix_.size()), 0);
  return d;
}

std::vector<size_t> RecordEncoder::token_ends(const std::vector<int32_t>& ids, const std::string& text) const {
  tokenizer::StreamDecoder dec(tok_);
  std::vector<size_t> ends;
  ends.reserve(ids.size());
  std::string decoded;
  for (int32_t id : ids) {
    decoded += dec.push(id);
    ends.push_back(decoded.size());
  }
  decoded += dec.flush();
  if (!ends.empty()) ends.back() = decoded.size();
  if (decoded != text)
    throw FormatError(
        "the tokenized text does not decode back to the rendered text, so assistant spans cannot be "
        "mapped to tokens");
  return ends;
}

std::string RecordEncoder::marker_cut(const std::string& suffix) const {
  size_t best = std::string::npos, best_len = 0;
  for (const auto& sp : specials_) {
    size_t p = suffix.find(sp);
    if (p != std::string::npos && (p < best || (p == best && sp.size() > best_len))) {
      best = p;
      best_len = sp.size();
    }
  }
  if (best != std::string::npos) return suffix.substr(0, best + best_len);
  std::string line = suffix.substr(0, suffix.find('\n'));
  return std::string(trim(line)).empty() ? "" : line.substr(0, line.find_last_not_of(" \t\r") + 1);
}

TokenizedDoc RecordEncoder::encode_chat(const Record& r) const {
  bool any_assistant = false;
  for (const auto& m : r.messages) any_assistant |= m.role == "assistant";
  if (!any_assistant && train_on_ == TrainOn::kAssistant)
    throw FormatError("no assistant message, so nothing to train on; expected at least one (or --train-on all)");
  const json& config = tok_.config();
  chat::ChatPromptOptions options;
  options.origin = origin_;
  chat::ChatPrompt prompt = chat::chat_prompt_encode(tok_, messages_json(r.messages, r.messages.size()), options);
  const std::string& full = prompt.text;
  TokenizedDoc d;
  d.kind = RecordKind::kChat;
  d.tokens = std::move(prompt.ids);
  d.mask.assign(d.tokens.size(), train_on_ == TrainOn::kAll ? 1 : 0);
  if (train_on_ == TrainOn::kAll) return d;
  std::vector<size_t> ends = token_ends(d.tokens, full);
  size_t cursor = 0;
  for (size_t i = 0; i < r.messages.size(); ++i) {
    if (r.messages[i].role != "assistant") continue;
    std::string content(trim(r.messages[i].content));
    std::string a = chat::chat_template_apply(config, messages_json(r.messages, i), true, nullptr, origin_);
    std::string b = chat::chat_template_apply(config, messages_json(r.messages, i + 1), false, nullptr, origin_);
    bool prefix_ok = starts_with(full, a) && a.size() >= cursor;
    size_t from = prefix_ok ? a.size() : cursor;
    size_t at = full.find(content, from);
    size_t in_b = b.rfind(content);
    if (at == std::string::npos || in_b == std::string::npos)
      throw FormatError(
          fmt::format("messages[{}]: the assistant content was not found in the chat template's output", i));
    size_t end = at + content.size();
    std::string marker = marker_cut(b.substr(in_b + content.size()));
    if (!marker.empty() && full.compare(end, marker.size(), marker) == 0) end += marker.size();
    mask_span(ends, prefix_ok ? a.size() : at, end, d.mask);
    cursor = end;
  }
  return d;
}

TokenizedDoc RecordEncoder::encode_completion(const Record& r) const {
  std::string text = r.prompt + r.completion;
  std::vector<int32_t> body = tok_.encode(text, kPlain);
  TokenizedDoc d;
  d.kind = RecordKind::kCompletion;
  d.tokens = prefix_;
  append(d.tokens, body);
  d.tokens.push_back(eos_);
  d.mask.assign(d.tokens.size(), 0);
  if (train_on_ == TrainOn::kAll) {
    std::fill(d.mask.begin() + static_cast<std::ptrdiff_t>(prefix_.size()), d.mask.end(), 1);
    return d;
  }
  std::vector<uint8_t> body_mask(body.size(), 0);
  mask_span(token_ends(body, text), r.prompt.size(), text.size(), body_mask);
  std::copy(body_mask.begin(), body_mask.end(), d.mask.begin() + static_cast<std::ptrdiff_t>(prefix_.size()));
  d.mask.back() = 1;
  return d;
}

}  // namespace hearth::data
