#include "data/text_util.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "tokenizer/unicode.h"

namespace hearth::data {

std::optional<size_t> utf8_first_invalid(std::string_view s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    // Fast path over ASCII, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t start = i;
    uint32_t cp = tokenizer::utf8_next(s, i);
    if (cp == 0xFFFD && !(i - start == 3 && s.substr(start, 3) == "\xEF\xBF\xBD")) return start;
  }
  return std::nullopt;
}

uint64_t line_of(std::string_view s, size_t offset) {
  return 1 + static_cast<uint64_t>(std::count(s.begin(), s.begin() + std::min(offset, s.size()), '\n'));
}

std::string utf8_problem(std::string_view s, uint64_t first_line, uint64_t* line_out) {
  auto bad = utf8_first_invalid(s);
  if (!bad) return "";
  uint64_t line = first_line - 1 + line_of(s, *bad);
  if (line_out) *line_out = line;
  return fmt::format("invalid UTF-8 (byte 0x{:02x}); expected UTF-8 text", static_cast<unsigned char>(s[*bad]));
}

std::string latin1_to_utf8(std::string_view s) {
  // windows-1252 0x80..0x9F; 0 where undefined (kept as U+0080+i like ISO-8859-1).
  static const uint16_t k1252[32] = {0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                     0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017D, 0,
                                     0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                     0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (unsigned char c : s) {
    uint32_t cp = c;
    if (c >= 0x80 && c < 0xA0 && k1252[c - 0x80]) cp = k1252[c - 0x80];
    tokenizer::utf8_append(out, cp);
  }
  return out;
}

std::vector<std::string_view> lines_split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    size_t end = nl == std::string_view::npos ? s.size() : nl;
    std::string_view line = s.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool iequals(std::string_view a, std::string_view b) { return a.size() == b.size() && lower(a) == lower(b); }

std::string iso_utc(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  if (!::gmtime_r(&t, &tm)) return "";
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool looks_binary(std::string_view s) { return s.substr(0, 8000).find('\0') != std::string_view::npos; }

}  // namespace hearth::data
