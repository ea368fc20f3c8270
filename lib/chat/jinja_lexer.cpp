// Lexer for hearth's Jinja chat-template engine. See jinja_lexer.h for what it implements.
//
// Whitespace control follows jinja2's Lexer.tokeniter: the text before a tag is right-stripped for `{%-`,
// or (lstrip_blocks) cut back to the last newline when only whitespace follows it and the text starts a line;
// after `%}` or `#}` one newline is consumed (trim_blocks), after `-%}` all whitespace.
#include "chat/jinja_lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "chat/jinja_value.h"
#include "core/error.h"

namespace hearth::chat {

std::string JinjaSource::where(size_t offset) const {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return origin + ":" + std::to_string(line) + ":" + std::to_string(col);
}

JinjaSource jinja_source(const std::string& text, const std::string& origin) {
  JinjaSource src{origin, {}};
  src.text.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      src.text += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      src.text += text[i];
    }
  }
  if (!src.text.empty() && src.text.back() == '\n') src.text.pop_back();
  return src;
}

namespace {

// Python's str.isspace() on the UTF-8 character starting at s[i]; sets *len to its byte length.
bool space_at(const std::string& s, size_t i, size_t* len) {
  unsigned char c = s[i];
  *len = 1;
  if (c < 0x80) return is_unicode_space(c);
  size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
  if (i + n > s.size()) return false;
  std::u32string cp = utf8_decode(s.substr(i, n));
  if (cp.size() != 1 || !is_unicode_space(cp[0])) return false;
  *len = n;
  return true;
}

std::string rstrip_space(const std::string& s) {
  std::u32string cps = utf8_decode(s);
  while (!cps.empty() && is_unicode_space(cps.back())) cps.pop_back();
  return utf8_encode(cps);
}

// Skips whitespace from `pos`; returns the new position.
size_t skip_space(const std::string& s, size_t pos) {
  size_t len = 1;
  while (pos < s.size() && space_at(s, pos, &len)) pos += len;
  return pos;
}

bool only_space(const std::string& s, size_t from) {
  if (from >= s.size()) return false;  // jinja2 matches \s+: at least one character
  size_t len = 1;
  for (size_t i = from; i < s.size(); i += len)
    if (!space_at(s, i, &len)) return false;
  return true;
}

class Lexer {
 public:
  explicit Lexer(const JinjaSource& src) : src_(src), s_(src.text) {}
  std::vector<JinjaToken> run();

 private:
  [[noreturn]] void fail(size_t offset, const std::string& what) const {
    throw FormatError(src_.where(offset) + ": " + what);
  }
  void emit_text(std::string text, size_t offset, char tag, char modifier);
  // After an end marker ending at `pos`: applies trim_blocks / `-` stripping; returns the new position.
  size_t after_end(size_t pos, char modifier);
  size_t lex_comment(size_t start);
  bool try_raw(size_t start, size_t* pos);
  size_t lex_tag(size_t start, bool block);
  size_t lex_string(size_t pos);
  size_t lex_number(size_t pos);

  const JinjaSource& src_;
  const std::string& s_;
  std::vector<JinjaToken> out_;
  bool line_starting_ = true;
};

void Lexer::emit_text(std::string text, size_t offset, char tag, char modifier) {
  if (modifier == '-') {
    text = rstrip_space(text);
  } else if (modifier != '+' && tag != '{') {
    size_t l_pos = text.rfind('\n');
    l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
    if ((l_pos > 0 || line_starting_) && only_space(text, l_pos)) text.resize(l_pos);
  }
  if (!text.empty()) out_.push_back({JinjaToken::Kind::kText, std::move(text), 0, 0, offset});
}

size_t Lexer::after_end(size_t pos, char modifier) {
  size_t start = pos;
  if (modifier == '-') {
    pos = skip_space(s_, pos);
  } else if (modifier != '+' && modifier != 'v' && pos < s_.size() && s_[pos] == '\n') {
    ++pos;  // trim_blocks (not after }})
  }
  line_starting_ = pos > start && s_[pos - 1] == '\n';
  return pos;
}

size_t Lexer::lex_comment(size_t start) {
  size_t end = s_.find("#}", start + 2);
  if (end == std::string::npos) fail(start, "unterminated comment; expected '#}', got end of template");
  char modifier = end > start + 2 && (s_[end - 1] == '-' || s_[end - 1] == '+') ? s_[end - 1] : 0;
  return after_end(end + 2, modifier);
}

// Matches `{%[-+]? raw [-]?%}` at `start`; on success emits the raw text and sets *pos past `{% endraw %}`.
bool Lexer::try_raw(size_t start, size_t* pos) {
  size_t p = start + 2;
  if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) ++p;
  p = skip_space(s_, p);
  if (s_.compare(p, 3, "raw") != 0) return false;
  p = skip_space(s_, p + 3);
  char begin_mod = 0;
  if (p < s_.size() && s_[p] == '-') begin_mod = '-', ++p;
  if (s_.compare(p, 2, "%}") != 0) return false;
  p = begin_mod == '-' ? skip_space(s_, p + 2) : p + 2;
  line_starting_ = p > 0 && s_[p - 1] == '\n';
  // Find `{%[-+]? endraw [-+]?%}`.
  for (size_t q = s_.find("{%", p); q != std::string::npos; q = s_.find("{%", q + 2)) {
    size_t r = q + 2;
    char mod = 0;
    if (r < s_.size() && (s_[r] == '-' || s_[r] == '+')) mod = s_[r++];
    r = skip_space(s_, r);
    if (s_.compare(r, 6, "endraw") != 0) continue;
    r = skip_space(s_, r + 6);
    char end_mod = 0;
    if (r < s_.size() && (s_[r] == '-' || s_[r] == '+')) end_mod = s_[r++];
    if (s_.compare(r, 2, "%}") != 0) continue;
    emit_text(s_.substr(p, q - p), p, '%', mod);
    *pos = after_end(r + 2, end_mod);
    return true;
  }
  fail(start, "unterminated raw block; expected '{% endraw %}', got end of template");
}

size_t Lexer::lex_string(size_t pos) {
  char quote = s_[pos];
  std::string value;
  size_t i = pos + 1;
  for (; i < s_.size() && s_[i] != quote; ++i) {
    if (s_[i] != '\\') {
      value += s_[i];
      continue;
    }
    if (++i >= s_.size()) break;
    char c = s_[i];
    auto hex = [&](int digits) {
      if (i + digits >= s_.size()) fail(i, "truncated \\" + std::string(1, c) + " escape in string literal");
      std::string h = s_.substr(i + 1, digits);
      for (char d : h)
        if (!std::isxdigit(static_cast<unsigned char>(d))) fail(i, "invalid \\" + std::string(1, c) + " escape");
      i += digits;
      value += utf8_encode(std::u32string(1, static_cast<char32_t>(std::strtoul(h.c_str(), nullptr, 16))));
    };
    switch (c) {
      case 'n': value += '\n'; break;
      case 't': value += '\t'; break;
      case 'r': value += '\r'; break;
      case 'a': value += '\a'; break;
      case 'b': value += '\b'; break;
      case 'f': value += '\f'; break;
      case 'v': value += '\v'; break;
      case '\\':
      case '\'':
      case '"': value += c; break;
      case '\n': break;  // line continuation
      case 'x': hex(2); break;
      case 'u': hex(4); break;
      case 'U': hex(8); break;
      default:
        if (c >= '0' && c <= '7') {
          int code = 0, n = 0;
          while (n < 3 && i < s_.size() && s_[i] >= '0' && s_[i] <= '7') code = code * 8 + (s_[i++] - '0'), ++n;
          --i;
          value += utf8_encode(std::u32string(1, static_cast<char32_t>(code)));
        } else {
          value += '\\';
          value += c;  // Python keeps unknown escapes as written
        }
    }
  }
  if (i >= s_.size())
    fail(pos, "unterminated string literal; expected " + std::string(1, quote) + ", got end of template");
  out_.push_back({JinjaToken::Kind::kString, std::move(value), 0, 0, pos});
  return i + 1;
}

size_t Lexer::lex_number(size_t pos) {
  auto digits = [&](size_t p) {
    while (p < s_.size() &&
           (std::isdigit(static_cast<unsigned char>(s_[p])) ||
            (s_[p] == '_' && p + 1 < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p + 1])))))
      ++p;
    return p;
  };
  size_t end = digits(pos);
  bool is_float = false;
  bool after_dot = pos > 0 && s_[pos - 1] == '.';  // `x.0.1` is attribute access, not a float
  if (!after_dot && end + 1 < s_.size() && s_[end] == '.' && std::isdigit(static_cast<unsigned char>(s_[end + 1]))) {
    end = digits(end + 1);
    is_float = true;
  }
  if (!after_dot && end < s_.size() && (s_[end] == 'e' || s_[end] == 'E')) {
    size_t p = end + 1;
    if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
    if (p < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p]))) {
      end = digits(p);
      is_float = true;
    }
  }
  std::string text;
  for (size_t i = pos; i < end; ++i)
    if (s_[i] != '_') text += s_[i];
  JinjaToken t{is_float ? JinjaToken::Kind::kFloat : JinjaToken::Kind::kInt, text, 0, 0, pos};
  if (is_float) {
    t.float_value = std::strtod(text.c_str(), nullptr);
  } else {
    errno = 0;
    t.int_value = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) fail(pos, "integer literal out of range; expected at most 19 digits, got " + text);
  }
  out_.push_back(std::move(t));
  return end;
}

// Lexes the inside of a `{{ ... }}` or `{% ... %}` tag starting at `start`; returns the position after it.
size_t Lexer::lex_tag(size_t start, bool block) {
  static const char* kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<",
                                     ">",  "=",  ".",  ",",  ":",  "|",  "(", ")", "[", "]", "{", "}"};
  const char* end_marker = block ? "%}" : "}}";
  out_.push_back({block ? JinjaToken::Kind::kBlockBegin : JinjaToken::Kind::kVarBegin, "", 0, 0, start});
  size_t pos = start + 2;
  if (pos < s_.size() && (s_[pos] == '-' || s_[pos] == '+')) ++pos;
  int depth = 0;
  while (true) {
    pos = skip_space(s_, pos);
    if (pos >= s_.size()) {
      fail(start, std::string("unterminated tag; expected '") + end_marker + "', got end of template");
    }
    if (depth == 0) {
      char modifier = 0;
      size_t p = pos;
      if (s_[p] == '-' || (block && s_[p] == '+')) modifier = s_[p++];
      if (s_.compare(p, 2, end_marker) == 0) {
        out_.push_back({block ? JinjaToken::Kind::kBlockEnd : JinjaToken::Kind::kVarEnd, "", 0, 0, pos});
        return after_end(p + 2, block ? modifier : (modifier == '-' ? '-' : 'v'));
      }
    }
    unsigned char c = s_[pos];
    if (std::isalpha(c) || c == '_') {
      size_t end = pos;
      while (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) ++end;
      out_.push_back({JinjaToken::Kind::kName, s_.substr(pos, end - pos), 0, 0, pos});
      pos = end;
    } else if (std::isdigit(c)) {
      pos = lex_number(pos);
    } else if (c == '\'' || c == '"') {
      pos = lex_string(pos);
    } else {
      const char* op = nullptr;
      for (const char* o : kOperators)
        if (s_.compare(pos, std::char_traits<char>::length(o), o) == 0) {
          op = o;
          break;
        }
      if (!op) fail(pos, std::string("unexpected character '") + static_cast<char>(c) + "' in tag");
      if (*op == '(' || *op == '[' || *op == '{') ++depth;
      if ((*op == ')' || *op == ']' || *op == '}') && depth > 0) --depth;
      out_.push_back({JinjaToken::Kind::kOperator, op, 0, 0, pos});
      pos += std::char_traits<char>::length(op);
    }
  }
}

std::vector<JinjaToken> Lexer::run() {
  size_t pos = 0;
  while (pos < s_.size()) {
    size_t start = pos;
    while (true) {
      start = s_.find('{', start);
      if (start == std::string::npos || start + 1 >= s_.size()) {
        start = std::string::npos;
        break;
      }
      char c = s_[start + 1];
      if (c == '{' || c == '%' || c == '#') break;
      ++start;
    }
    if (start == std::string::npos) {
      out_.push_back({JinjaToken::Kind::kText, s_.substr(pos), 0, 0, pos});
      break;
    }
    char tag = s_[start + 1];
    char modifier = start + 2 < s_.size() && (s_[start + 2] == '-' || s_[start + 2] == '+') ? s_[start + 2] : 0;
    emit_text(s_.substr(pos, start - pos), pos, tag, tag == '{' && modifier == '+' ? 0 : modifier);
    if (tag == '#') {
      pos = lex_comment(start);
    } else if (tag == '%' && try_raw(start, &pos)) {
      // raw text emitted
    } else {
      pos = lex_tag(start, tag == '%');
    }
  }
  out_.push_back({JinjaToken::Kind::kEnd, "", 0, 0, s_.size()});
  return std::move(out_);
}

}  // namespace

std::vector<JinjaToken> jinja_lex(const JinjaSource& source) { return Lexer(source).run(); }

}  // namespace hearth::chat
