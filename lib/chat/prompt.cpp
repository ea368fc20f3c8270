// Chat prompts: messages -> rendered text -> ids. See prompt.h.
//
// How message text stays plain: every string of the messages and tools (values and object keys) has each
// special-token text in it (leftmost-longest, as the tokenizer matches) swapped for a private-use code point
// of its own before the template renders; the rendered text gets the token texts back, and the byte ranges
// they land on are the plain spans of Tokenizer::encode. A code point is one character to the template, so
// strip, split, slicing and tojson carry it through as they carry the text around it, and the rendering is
// byte for byte the template's own unless the template looks at the special-token text itself (tests for
// it, splits on it: none of the real templates we know does this with a special token). Code points come
// from plane 15's private use area, skipping any that already occur in the messages, tools or
// tokenizer_config.json (the template source); a template that builds one itself from an escape would see
// it read back as token text.
#include "chat/prompt.h"

#include <unordered_map>
#include <unordered_set>

#include "chat/chat_template.h"
#include "core/error.h"

namespace hearth::chat {
namespace {

using nlohmann::ordered_json;

constexpr char32_t kSentinelFirst = 0xF0000, kSentinelLast = 0xFFFFD;  // Supplementary Private Use Area-A

std::string utf8_of(char32_t cp) {  // cp in plane 15: four bytes
  return {static_cast<char>(0xF0 | (cp >> 18)), static_cast<char>(0x80 | ((cp >> 12) & 0x3F)),
          static_cast<char>(0x80 | ((cp >> 6) & 0x3F)), static_cast<char>(0x80 | (cp & 0x3F))};
}

// The plane-15 code point whose UTF-8 starts at s[i] (lead byte 0xF3), or 0.
char32_t plane15_at(const std::string& s, size_t i) {
  if (i + 4 > s.size() || static_cast<unsigned char>(s[i]) != 0xF3) return 0;
  char32_t cp = (char32_t{0x3} << 18) | (char32_t(s[i + 1] & 0x3F) << 12) | (char32_t(s[i + 2] & 0x3F) << 6) |
                char32_t(s[i + 3] & 0x3F);
  return cp >= kSentinelFirst && cp <= kSentinelLast ? cp : 0;
}

// Calls f on every string of j: values and object keys.
template <class F>
void strings_each(const ordered_json& j, F&& f) {
  if (j.is_string()) f(j.get_ref<const std::string&>());
  if (j.is_array())
    for (const auto& v : j) strings_each(v, f);
  if (j.is_object())
    for (const auto& [k, v] : j.items()) {
      f(k);
      strings_each(v, f);
    }
}

// j with every string (values and keys) replaced by f(string).
template <class F>
ordered_json strings_map(const ordered_json& j, F&& f) {
  if (j.is_string()) return f(j.get_ref<const std::string&>());
  if (j.is_array()) {
    ordered_json out = ordered_json::array();
    for (const auto& v : j) out.push_back(strings_map(v, f));
    return out;
  }
  if (j.is_object()) {
    ordered_json out = ordered_json::object();
    for (const auto& [k, v] : j.items()) out[f(k)] = strings_map(v, f);
    return out;
  }
  return j;
}

// Special-token texts found in the caller's strings, each with the code point that stands in for it.
class Sentinels {
 public:
  Sentinels(std::vector<std::string> specials, const ordered_json& messages, const ordered_json& tools,
            const nlohmann::json& config)
      : specials_(std::move(specials)) {
    auto note = [this](const std::string& s) { note_used(s); };
    strings_each(messages, note);
    strings_each(tools, note);
    note_used(config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // s with each special-token text in it (leftmost-longest) replaced by its code point.
  std::string swap_in(const std::string& s) {
    std::string out;
    std::vector<size_t> next(specials_.size());
    for (size_t k = 0; k < specials_.size(); ++k) next[k] = s.find(specials_[k]);
    size_t pos = 0;
    for (;;) {
      size_t best = std::string::npos, best_k = 0;
      for (size_t k = 0; k < specials_.size(); ++k) {
        if (next[k] != std::string::npos && next[k] < pos) next[k] = s.find(specials_[k], pos);
        if (next[k] < best ||
            (next[k] == best && best != std::string::npos && specials_[k].size() > specials_[best_k].size())) {
          best = next[k];
          best_k = k;
        }
      }
      if (best == std::string::npos) break;
      out.append(s, pos, best - pos);
      out += code_point_of(best_k);
      pos = best + specials_[best_k].size();
    }
    if (pos == 0) return s;
    out.append(s, pos, std::string::npos);
    return out;
  }

  // The rendered text with the token texts back, and the byte ranges they occupy.
  std::pair<std::string, std::vector<std::pair<size_t, size_t>>> swap_out(const std::string& rendered) const {
    std::string text;
    std::vector<std::pair<size_t, size_t>> spans;
    for (size_t i = 0; i < rendered.size();) {
      auto it = text_of_.find(plane15_at(rendered, i));
      if (it == text_of_.end()) {
        text += rendered[i++];
        continue;
      }
      if (!spans.empty() && spans.back().second == text.size()) spans.back().second += it->second.size();
      else spans.emplace_back(text.size(), text.size() + it->second.size());
      text += it->second;
      i += 4;
    }
    return {std::move(text), std::move(spans)};
  }

 private:
  void note_used(const std::string& s) {
    for (size_t i = 0; i < s.size(); ++i)
      if (char32_t cp = plane15_at(s, i)) used_.insert(cp);
  }

  const std::string& code_point_of(size_t k) {
    auto it = utf8_of_.find(k);
    if (it != utf8_of_.end()) return it->second;
    while (next_free_ <= kSentinelLast && used_.count(next_free_)) ++next_free_;
    if (next_free_ > kSentinelLast)  // only messages built to hold all 65534 of them
      throw FormatError(
          "messages: no private-use code point of plane 15 is free to carry their special-token text; expected "
          "messages that do not use all of U+F0000..U+FFFFD");
    used_.insert(next_free_);
    text_of_[next_free_] = specials_[k];
    return utf8_of_[k] = utf8_of(next_free_++);
  }

  std::vector<std::string> specials_;
  std::unordered_set<char32_t> used_;
  char32_t next_free_ = kSentinelFirst;
  std::unordered_map<size_t, std::string> utf8_of_;    // special index -> its code point, UTF-8
  std::unordered_map<char32_t, std::string> text_of_;  // code point -> token text
};

}  // namespace

ChatPrompt chat_prompt_encode(const tokenizer::Tokenizer& tokenizer, const nlohmann::ordered_json& messages,
                              const ChatPromptOptions& options) {
  const tokenizer::EncodeOptions encode{/*add_special_tokens=*/false, /*parse_special=*/true};
  const std::vector<std::string> specials = tokenizer.special_tokens();
  bool found = false;
  auto look = [&](const std::string& s) {
    for (size_t k = 0; k < specials.size() && !found; ++k) found = s.find(specials[k]) != std::string::npos;
  };
  strings_each(messages, look);
  strings_each(options.tools, look);
  ChatPrompt prompt;
  if (!found) {  // the common case: nothing to keep plain
    prompt.text = chat_template_apply(tokenizer.config(), messages, options.add_generation_prompt, options.tools,
                                      options.origin);
    prompt.ids = tokenizer.encode(prompt.text, encode);
    return prompt;
  }
  Sentinels sentinels(specials, messages, options.tools, tokenizer.config());
  auto swap = [&sentinels](const std::string& s) { return sentinels.swap_in(s); };
  std::string rendered = chat_template_apply(tokenizer.config(), strings_map(messages, swap),
                                             options.add_generation_prompt, strings_map(options.tools, swap),
                                             options.origin);
  auto [text, spans] = sentinels.swap_out(rendered);
  prompt.text = std::move(text);
  prompt.ids = tokenizer.encode(prompt.text, encode, spans);
  return prompt;
}

ChatPrompt chat_prompt_encode(const tokenizer::Tokenizer& tokenizer, const nlohmann::json& messages,
                              const ChatPromptOptions& options) {
  return chat_prompt_encode(tokenizer, nlohmann::ordered_json(messages), options);
}

std::vector<std::string> chat_stop_strings(const tokenizer::Tokenizer& tokenizer) {
  const auto& config = tokenizer.config();
  const bool fallback = !config.is_object() || !config.contains("chat_template") || config["chat_template"].is_null();
  if (fallback) return {"<|im_end|>"};
  return {};
}

}  // namespace hearth::chat
