// tokenizer.json normalizers. See normalizer.h; behaviour follows HF tokenizers' normalizers/*.rs.
#include "tokenizer/normalizer.h"

#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

namespace {

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  std::string normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& p : parts_) s = p->normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

// Prepends a string to non-empty text (the SentencePiece "▁" of Llama 2 style tokenizers).
class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  std::string normalize(std::string_view text) const override {
    if (text.empty()) return {};
    return prepend_ + std::string(text);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string_view text) const override { return pattern_replace(pattern_, text, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

// NFC, NFD, NFKC, NFKD and Lowercase: one function of unicode.h each.
class FunctionNormalizer : public Normalizer {
 public:
  explicit FunctionNormalizer(std::string (*f)(std::string_view)) : f_(f) {}
  std::string normalize(std::string_view text) const override { return f_(text); }

 private:
  std::string (*f_)(std::string_view);
};

// Strips Unicode whitespace from the left and/or right.
class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        size_t next = begin;
        if (!is_unicode_whitespace(utf8_next(text, next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t next = start;
        if (!is_unicode_whitespace(utf8_next(text, next))) break;
        end = start;
      }
    }
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_, right_;
};

}  // namespace

std::unique_ptr<Normalizer> normalizer_from_json(const nlohmann::json& j, const Where& where) {
  if (j.is_null()) return nullptr;
  const std::string type = json_type(j, where);
  if (type == "Sequence") {
    const auto& list = json_member(j, "normalizers", where);
    if (!list.is_array()) throw_format(where / "normalizers", "wrong type", "an array", json_brief(list));
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      if (auto n = normalizer_from_json(list[i], (where / "normalizers").at(i))) parts.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(json_string(j, "prepend", where));
  if (type == "Replace") {
    Pattern pattern(json_member(j, "pattern", where), where / "pattern");
    return std::make_unique<ReplaceNormalizer>(std::move(pattern), json_string(j, "content", where));
  }
  if (type == "NFC") return std::make_unique<FunctionNormalizer>(nfc);
  if (type == "NFD") return std::make_unique<FunctionNormalizer>(nfd);
  if (type == "NFKC") return std::make_unique<FunctionNormalizer>(nfkc);
  if (type == "NFKD") return std::make_unique<FunctionNormalizer>(nfkd);
  if (type == "Lowercase") return std::make_unique<FunctionNormalizer>(lowercase);
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(json_bool(j, "strip_left", where, true),
                                             json_bool(j, "strip_right", where, true));
  }
  throw_format(where / "type", "unsupported normalizer",
               "one of Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD, Lowercase, Strip", "\"" + type + "\"");
}

}  // namespace hearth::tokenizer
