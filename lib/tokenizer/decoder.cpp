// tokenizer.json decoders. See decoder.h.
#include "tokenizer/decoder.h"

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

namespace {

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }
  void decode_chain_bytes(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain_bytes(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

// Byte-level characters back to bytes; a token with a character outside the map keeps its own bytes.
// The whole result is one string, invalid UTF-8 replaced (String::from_utf8_lossy).
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    decode_chain_bytes(tokens);
    tokens[0] = utf8_sanitize(tokens[0]);
  }
  void decode_chain_bytes(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t mark = bytes.size();
      size_t pos = 0;
      bool mapped = true;
      while (pos < t.size() && mapped) {
        const auto b = unicode_to_byte(utf8_next(t, pos));
        if (b) bytes += static_cast<char>(*b);
        else mapped = false;
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, std::move(bytes));
  }
};

// Runs of "<0xAB>" tokens become the text of their bytes (one U+FFFD per byte when not valid UTF-8).
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override { run(tokens, false); }
  void decode_chain_bytes(std::vector<std::string>& tokens) const override { run(tokens, true); }

 private:
  static void run(std::vector<std::string>& tokens, bool raw) {
    std::vector<std::string> out;
    std::string bytes;
    size_t byte_count = 0;
    auto flush = [&] {
      if (byte_count == 0) return;
      if (raw || utf8_is_valid(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < byte_count; ++i) out.push_back("\xEF\xBF\xBD");
      }
      bytes.clear();
      byte_count = 0;
    };
    for (std::string& t : tokens) {
      if (auto b = parse_byte(t)) {
        bytes += static_cast<char>(*b);
        ++byte_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }

  static std::optional<int> parse_byte(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
    int value = 0;
    for (int i = 3; i < 5; ++i) {
      const char c = t[i];
      const int digit = (c >= '0' && c <= '9')   ? c - '0'
                        : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                        : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                                                 : -1;
      if (digit < 0) return std::nullopt;
      value = value * 16 + digit;
    }
    return value;
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing occurrences of one character from every token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    const size_t n = content_.size();
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t i = 0; i < start_ && n > 0 && t.compare(begin, n, content_) == 0; ++i) begin += n;
      for (size_t i = 0; i < stop_ && n > 0 && end >= begin + n && t.compare(end - n, n, content_) == 0; ++i) {
        end -= n;
      }
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = pattern_replace(pattern_, t, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// The replacement character becomes a space; in the first token it is dropped unless prepend_scheme is
// "never" (HF decoders Metaspace).
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_in_first)
      : replacement_(std::move(replacement)), drop_in_first_(drop_in_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string_view with = (i == 0 && drop_in_first_) ? "" : " ";
      std::string out;
      size_t prev = 0;
      for (size_t at = tokens[i].find(replacement_); at != std::string::npos && !replacement_.empty();
           at = tokens[i].find(replacement_, prev)) {
        out.append(tokens[i], prev, at - prev).append(with);
        prev = at + replacement_.size();
      }
      tokens[i] = out.append(tokens[i], prev, std::string::npos);
    }
  }

 private:
  std::string replacement_;
  bool drop_in_first_;
};

std::unique_ptr<Decoder> metaspace_from_json(const nlohmann::json& j, const Where& where) {
  bool drop = json_bool(j, "add_prefix_space", where, true);
  if (j.contains("prepend_scheme")) drop = json_string(j, "prepend_scheme", where) != "never";
  return std::make_unique<MetaspaceDecoder>(json_string(j, "replacement", where, "\u2581"), drop);
}

}  // namespace

std::unique_ptr<Decoder> decoder_from_json(const nlohmann::json& j, const Where& where) {
  if (j.is_null()) return nullptr;
  const std::string type = json_type(j, where);
  if (type == "Sequence") {
    const auto& list = json_member(j, "decoders", where);
    if (!list.is_array()) throw_format(where / "decoders", "wrong type", "an array", json_brief(list));
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      if (auto d = decoder_from_json(list[i], (where / "decoders").at(i))) parts.push_back(std::move(d));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(json_string(j, "content", where, " "),
                                          static_cast<size_t>(json_int(j, "start", where, 0)),
                                          static_cast<size_t>(json_int(j, "stop", where, 0)));
  }
  if (type == "Replace") {
    Pattern pattern(json_member(j, "pattern", where), where / "pattern");
    return std::make_unique<ReplaceDecoder>(std::move(pattern), json_string(j, "content", where));
  }
  if (type == "Metaspace") return metaspace_from_json(j, where);
  throw_format(where / "type", "unsupported decoder",
               "one of Sequence, ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace", "\"" + type + "\"");
}

}  // namespace hearth::tokenizer
