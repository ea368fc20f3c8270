// UTF-8 helpers, the GPT-2 byte map, normalization forms and lower case. See unicode.h.
#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <new>
#include <unordered_map>
#include <vector>

namespace hearth::tokenizer {

namespace {

constexpr uint32_t kReplacement = 0xFFFD;

// Valid range of the second byte for a lead byte (Unicode Table 3-7); {0, 0} for invalid leads.
std::pair<unsigned char, unsigned char> second_byte_range(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return {0x80, 0xBF};
  if (lead == 0xE0) return {0xA0, 0xBF};
  if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) return {0x80, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3) return {0x80, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};
  return {0, 0};
}

}  // namespace

size_t utf8_char_len(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 1;
}

size_t utf8_unfinished_tail(std::string_view s) {
  // A character is at most 4 bytes, so an unfinished one starts in the last 3.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t start = s.size() - back;
    const auto lead = static_cast<unsigned char>(s[start]);
    if ((lead & 0xC0) == 0x80) continue;  // a continuation byte: its lead, if any, is further back
    const size_t len = utf8_char_len(lead);
    const auto [lo, hi] = second_byte_range(lead);
    if (len == 1 || lo == 0 || back >= len) return 0;  // ASCII, an invalid lead, or a whole character
    for (size_t i = 1; i < back; ++i) {
      const auto b = static_cast<unsigned char>(s[start + i]);
      if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    }
    return back;
  }
  return 0;
}

uint32_t utf8_next(std::string_view s, size_t& pos) {
  const auto lead = static_cast<unsigned char>(s[pos]);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  const size_t len = utf8_char_len(lead);
  const auto [lo, hi] = second_byte_range(lead);
  if (len == 1 || lo == 0) {
    ++pos;
    return kReplacement;
  }
  uint32_t cp = lead & (0xFF >> (len + 1));
  size_t i = 1;
  for (; i < len; ++i) {
    if (pos + i >= s.size()) break;
    const auto b = static_cast<unsigned char>(s[pos + i]);
    const bool ok = i == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) break;
    cp = (cp << 6) | (b & 0x3F);
  }
  pos += i;
  return i == len ? cp : kReplacement;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool utf8_is_valid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t start = pos;
    if (utf8_next(s, pos) == kReplacement && !(pos - start == 3 && s.substr(start, 3) == "\xEF\xBF\xBD")) {
      return false;
    }
  }
  return true;
}

std::string utf8_sanitize(std::string_view s) {
  if (utf8_is_valid(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  size_t pos = 0;
  while (pos < s.size()) utf8_append(out, utf8_next(s, pos));
  return out;
}

// ---- GPT-2 byte-level map ----

namespace {

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<uint32_t, uint8_t> to_byte;
  ByteMap() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      utf8_append(to_unicode[b], cp);
      to_byte[cp] = static_cast<uint8_t>(b);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

std::optional<uint8_t> unicode_to_byte(uint32_t cp) {
  const auto& m = byte_map().to_byte;
  auto it = m.find(cp);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::string byte_level_encode(std::string_view bytes) {
  const auto& map = byte_map().to_unicode;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += map[static_cast<unsigned char>(c)];
  return out;
}

bool is_unicode_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// ---- Normalization and lower case (utf8proc) ----

namespace {

// utf8proc_map over valid UTF-8 (anything else is first made valid, as from_utf8_lossy does).
std::string utf8proc_apply(std::string_view text, utf8proc_option_t options) {
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &out, options);
  if (n == UTF8PROC_ERROR_INVALIDUTF8) return utf8proc_apply(utf8_sanitize(text), options);
  if (n < 0) throw std::bad_alloc();  // UTF8PROC_ERROR_NOMEM, or an overflow of the output length
  std::string result(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

bool all_ascii(std::string_view text) {
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

// Code points below U+0300 start with a byte below 0xCC; none of them changes or combines under NFC or NFD.
bool below_u0300(std::string_view text) {
  for (char c : text)
    if (static_cast<unsigned char>(c) >= 0xCC) return false;
  return true;
}

bool is_cased(utf8proc_int32_t cp) {
  return utf8proc_islower(cp) || utf8proc_isupper(cp) || utf8proc_category(cp) == UTF8PROC_CATEGORY_LT;
}

// Unicode's Case_Ignorable, closely: marks, format characters, modifier letters and symbols, and the
// word-internal punctuation of Word_Break MidLetter/MidNumLet/Single_Quote.
bool is_case_ignorable(utf8proc_int32_t cp) {
  switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK: return true;
    default: break;
  }
  return cp == 0x27 || cp == 0x2E || cp == 0x3A || cp == 0x5E || cp == 0x60 || cp == 0xB7 || cp == 0x2018 ||
         cp == 0x2019 || cp == 0x2024 || cp == 0x2027 || cp == 0xFE13 || cp == 0xFE52 || cp == 0xFE55 || cp == 0xFF07 ||
         cp == 0xFF0E || cp == 0xFF1A;
}

}  // namespace

std::string nfc(std::string_view text) {
  if (below_u0300(text)) return std::string(text);
  return utf8proc_apply(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
}

std::string nfd(std::string_view text) {
  if (all_ascii(text)) return std::string(text);
  return utf8proc_apply(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE));
}

std::string nfkc(std::string_view text) {
  if (all_ascii(text)) return std::string(text);
  return utf8proc_apply(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
}

std::string nfkd(std::string_view text) {
  if (all_ascii(text)) return std::string(text);
  return utf8proc_apply(text, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
}

std::string lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  if (all_ascii(text)) {
    for (char c : text) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return out;
  }
  std::vector<uint32_t> cps;
  for (size_t pos = 0; pos < text.size();) cps.push_back(utf8_next(text, pos));
  for (size_t i = 0; i < cps.size(); ++i) {
    const auto cp = static_cast<utf8proc_int32_t>(cps[i]);
    if (cp == 0x130) {  // SpecialCasing: İ lowers to i + COMBINING DOT ABOVE
      out += "i\xCC\x87";
      continue;
    }
    if (cp == 0x3A3) {  // Final_Sigma: after a cased letter and not before one (ignoring case-ignorables)
      size_t b = i, a = i + 1;
      while (b > 0 && is_case_ignorable(static_cast<utf8proc_int32_t>(cps[b - 1]))) --b;
      while (a < cps.size() && is_case_ignorable(static_cast<utf8proc_int32_t>(cps[a]))) ++a;
      const bool final_sigma = b > 0 && is_cased(static_cast<utf8proc_int32_t>(cps[b - 1])) &&
                               !(a < cps.size() && is_cased(static_cast<utf8proc_int32_t>(cps[a])));
      utf8_append(out, final_sigma ? 0x3C2 : 0x3C3);
      continue;
    }
    utf8_append(out, static_cast<uint32_t>(utf8proc_tolower(cp)));
  }
  return out;
}

}  // namespace hearth::tokenizer
