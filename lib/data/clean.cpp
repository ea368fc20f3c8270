#include "data/clean.h"

#include "tokenizer/unicode.h"

namespace hearth::data {
namespace {

bool is_zero_width(uint32_t cp) { return cp == 0x200B || cp == 0x2060 || cp == 0xFEFF || cp == 0x00AD; }
bool is_space_like(uint32_t cp) {
  return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Appends c to out, applying the line rules: no trailing blanks, at most one blank line in a row.
struct LineWriter {
  std::string& out;
  int newlines = 0;  // newlines at the end of out
  std::string blanks = {};

  void put_blank(char c) {
    if (out.empty() && newlines == 0) return;  // leading blank space
    blanks += c;
  }
  void put_newline() {
    blanks.clear();
    if (out.empty()) return;
    if (newlines < 2) out += '\n';
    ++newlines;
  }
  void put_text(std::string_view s) {
    if (!blanks.empty()) {
      out += blanks;
      blanks.clear();
    }
    out.append(s.data(), s.size());
    newlines = 0;
  }
};

}  // namespace

std::string text_clean(std::string_view text) {
  std::string normalized = tokenizer::nfc(text);
  std::string out;
  out.reserve(normalized.size());
  LineWriter w{out};
  std::string_view s = normalized;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      // ASCII: copy runs of ordinary characters in one go.
      size_t j = i;
      while (j < s.size() && static_cast<unsigned char>(s[j]) >= 0x21 && static_cast<unsigned char>(s[j]) < 0x7F) ++j;
      if (j > i) {
        w.put_text(s.substr(i, j - i));
        i = j;
        continue;
      }
      ++i;
      if (c == ' ' || c == '\t') w.put_blank(static_cast<char>(c));
      else if (c == '\n') w.put_newline();
      else if (c == '\r') {
        if (i < s.size() && s[i] == '\n') ++i;
        w.put_newline();
      }  // other C0 controls and DEL are dropped
      continue;
    }
    size_t start = i;
    uint32_t cp = tokenizer::utf8_next(s, i);
    if (is_zero_width(cp) || (cp >= 0x80 && cp < 0xA0)) continue;
    if (is_space_like(cp)) w.put_blank(' ');
    else if (cp == 0x2028 || cp == 0x2029 || cp == 0x85) w.put_newline();
    else w.put_text(s.substr(start, i - start));
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Digest text_key(std::string_view cleaned) {
  Sha256 h;
  size_t i = 0, n = cleaned.size();
  bool need_space = false;
  while (i < n) {
    size_t j = i;
    while (j < n && !std::isspace(static_cast<unsigned char>(cleaned[j]))) ++j;
    if (j > i) {
      if (need_space) h.update(" ", 1);
      h.update(cleaned.data() + i, j - i);
      need_space = true;
    }
    i = j;
    while (i < n && std::isspace(static_cast<unsigned char>(cleaned[i]))) ++i;
  }
  return h.digest();
}

}  // namespace hearth::data
