// UTF-8 helpers, the GPT-2 byte map and NFC. See unicode.h.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <unordered_map>
#include <unordered_set>
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

// ---- NFC (UAX #15) ----

namespace {

struct CccRun {
  uint32_t first, last;
  uint8_t ccc;
};
struct DecompEntry {
  uint32_t cp, offset, length;
};
struct CompEntry {
  uint32_t first, second, composite;
};

#include "tokenizer/unicode_nfc_table.inc"

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount;
constexpr uint32_t kSCount = kLCount * kNCount;

uint8_t ccc_of(uint32_t cp) {
  if (cp < 0x300) return 0;
  auto it = std::upper_bound(std::begin(kCccRuns), std::end(kCccRuns), cp,
                             [](uint32_t v, const CccRun& r) { return v < r.first; });
  if (it == std::begin(kCccRuns)) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

const DecompEntry* decomp_of(uint32_t cp) {
  auto it = std::lower_bound(std::begin(kDecomp), std::end(kDecomp), cp,
                             [](const DecompEntry& e, uint32_t v) { return e.cp < v; });
  return (it != std::end(kDecomp) && it->cp == cp) ? &*it : nullptr;
}

struct CompTables {
  std::unordered_map<uint64_t, uint32_t> pairs;
  std::unordered_set<uint32_t> seconds;
  CompTables() {
    for (const auto& e : kComp) {
      pairs[(static_cast<uint64_t>(e.first) << 32) | e.second] = e.composite;
      seconds.insert(e.second);
    }
  }
};

const CompTables& comp_tables() {
  static const CompTables tables;
  return tables;
}

std::optional<uint32_t> compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto& pairs = comp_tables().pairs;
  auto it = pairs.find((static_cast<uint64_t>(a) << 32) | b);
  if (it == pairs.end()) return std::nullopt;
  return it->second;
}

// True when cp can neither change nor combine with a neighbour under NFC.
bool nfc_inert(uint32_t cp) {
  if (cp < 0x300) return true;
  if ((cp >= kVBase && cp < kVBase + kVCount) || (cp > kTBase && cp < kTBase + kTCount)) return false;
  if (cp >= kSBase && cp < kSBase + kSCount) return true;
  return ccc_of(cp) == 0 && decomp_of(cp) == nullptr && comp_tables().seconds.count(cp) == 0;
}

void decompose_into(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (const DecompEntry* d = decomp_of(cp)) {
    out.insert(out.end(), kDecompData + d->offset, kDecompData + d->offset + d->length);
  } else {
    out.push_back(cp);
  }
}

void canonical_order(std::vector<uint32_t>& cps) {
  size_t i = 0;
  while (i < cps.size()) {
    if (ccc_of(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc_of(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](uint32_t a, uint32_t b) { return ccc_of(a) < ccc_of(b); });
    i = j;
  }
}

void canonical_compose(std::vector<uint32_t>& cps) {
  if (cps.empty()) return;
  size_t starter = 0;
  int last_class = ccc_of(cps[0]) == 0 ? 0 : 256;
  size_t out = 1;
  for (size_t i = 1; i < cps.size(); ++i) {
    const uint32_t ch = cps[i];
    const int cls = ccc_of(ch);
    const bool blocked = !(last_class < cls || last_class == 0);
    std::optional<uint32_t> composite;
    if (!blocked && ccc_of(cps[starter]) == 0) composite = compose_pair(cps[starter], ch);
    if (composite) {
      cps[starter] = *composite;
      continue;
    }
    if (cls == 0) starter = out;
    last_class = cls;
    cps[out++] = ch;
  }
  cps.resize(out);
}

}  // namespace

std::string nfc(std::string_view text) {
  size_t pos = 0;
  bool inert = true;
  while (pos < text.size() && inert) inert = nfc_inert(utf8_next(text, pos));
  if (inert) return std::string(text);
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  pos = 0;
  while (pos < text.size()) decompose_into(utf8_next(text, pos), cps);
  canonical_order(cps);
  canonical_compose(cps);
  std::string out;
  out.reserve(text.size());
  for (uint32_t cp : cps) utf8_append(out, cp);
  return out;
}

}  // namespace hearth::tokenizer
