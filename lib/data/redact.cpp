#include "data/redact.h"

#include <cctype>
#include <cstdint>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "tokenizer/regex.h"

namespace hearth::data {
namespace {

enum class Group { kSecrets, kEmails, kPhones, kCards, kIps };

struct Rule {
  Group group;
  const char* kind;
  const char* placeholder;
  const char* pattern;
  const char* needle;  // a substring every match contains ("" when none): skips the regex when absent
};

// Order matters: secrets first (a URL password contains '@' that the email rule would take).
const Rule kRules[] = {
    {Group::kSecrets, "private_key", "[PRIVATE_KEY]",
     R"(-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z))",
     "PRIVATE KEY"},
    {Group::kSecrets, "api_token", "[API_TOKEN]",
     R"(\b(?:(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}|[rs]k_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})\b)",
     ""},
    {Group::kSecrets, "password", "[PASSWORD]",
     R"((?:\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:\K[^/\s@]+(?=@))|(?:(?i)\b(?:password|passwd|passphrase|pwd)\s*[:=]\s*\K[^\s,;]+))",
     ""},
    {Group::kEmails, "email", "[EMAIL]", R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})", "@"},
    {Group::kCards, "card", "[CARD]", R"((?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-]))", ""},
    {Group::kPhones, "phone", "[PHONE]",
     R"((?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,4}(?![\w]))", ""},
    {Group::kIps, "ip", "[IP]",
     R"(\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?(?![\w:]))",
     ""},
};

bool enabled(Group g, const RedactOptions& o) {
  switch (g) {
    case Group::kSecrets: return o.secrets;
    case Group::kEmails: return o.emails;
    case Group::kPhones: return o.phones;
    case Group::kCards: return o.cards;
    case Group::kIps: return o.ips;
  }
  return false;
}

const std::vector<std::unique_ptr<tokenizer::Regex>>& compiled() {
  static const auto regexes = [] {
    std::vector<std::unique_ptr<tokenizer::Regex>> v;
    for (const auto& r : kRules)
      v.push_back(std::make_unique<tokenizer::Regex>(r.pattern, tokenizer::Where{"redact", r.kind}));
    return v;
  }();
  return regexes;
}

size_t digit_count(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (c >= '0' && c <= '9');
  return n;
}

// Cheap supersets of what the phone, card and IP rules can match, checked before running their regexes (a note
// full of years and prices has digits everywhere, but rarely a run of 9 of them).
// Whether a run of digits joined by at most two of " .-()+/" at a time holds at least `min_digits` digits.
bool digit_run(std::string_view s, size_t min_digits) {
  size_t digits = 0, gap = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      if (++digits >= min_digits) return true;
      gap = 0;
    } else if (digits > 0 && (c == ' ' || c == '.' || c == '-' || c == '(' || c == ')' || c == '+' || c == '/') &&
               ++gap <= 2) {
    } else {
      digits = gap = 0;
    }
  }
  return false;
}

// Whether some stretch of [0-9.] holds 3 dots between digits (a dotted quad), or some stretch of [0-9A-Fa-f:]
// holds 7 colons or a "::" (IPv6, full or compressed).
bool ip_candidate(std::string_view s) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t dots = 0, colons = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      if (i > 0 && i + 1 < s.size() && is_digit(s[i - 1]) && is_digit(s[i + 1]) && ++dots >= 3) return true;
    } else if (!is_digit(c)) {
      dots = 0;
    }
    if (c == ':') {
      if ((i > 0 && s[i - 1] == ':') || ++colons >= 7) return true;
    } else if (!std::isxdigit(static_cast<unsigned char>(c))) {
      colons = 0;
    }
  }
  return false;
}

bool luhn_valid(std::string_view s) {
  int sum = 0, n = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it) {
    if (*it < '0' || *it > '9') continue;
    int d = *it - '0';
    if (n++ % 2 == 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return n >= 13 && n <= 19 && sum % 10 == 0;
}

// Extra checks a regex cannot express.
bool accept(const Rule& rule, std::string_view match) {
  std::string kind = rule.kind;
  if (kind == "card") return luhn_valid(match);
  if (kind == "phone") {
    size_t d = digit_count(match);
    return d >= 9 && d <= 15;
  }
  return true;
}

}  // namespace

void redact_parse(const std::string& list, const std::string& option, RedactOptions* o) {
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "secrets") o->secrets = true;
    else if (item == "emails") o->emails = true;
    else if (item == "phones") o->phones = true;
    else if (item == "cards") o->cards = true;
    else if (item == "ips") o->ips = true;
    else if (item == "all") *o = RedactOptions{true, true, true, true, true};
    else if (item == "none") *o = RedactOptions{false, false, false, false, false};
    else
      throw ConfigError(
          fmt::format("{}: expected a list of secrets|emails|phones|cards|ips|all|none, got '{}'", option, item));
  }
}

std::string redact_describe(const RedactOptions& o) {
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (on) s += (s.empty() ? "" : ",") + std::string(name);
  };
  add(o.secrets, "secrets");
  add(o.emails, "emails");
  add(o.phones, "phones");
  add(o.cards, "cards");
  add(o.ips, "ips");
  return s.empty() ? "none" : s;
}

const char* redact_group_of(const std::string& kind) {
  for (const auto& r : kRules) {
    if (kind != r.kind) continue;
    switch (r.group) {
      case Group::kSecrets: return "secrets";
      case Group::kEmails: return "emails";
      case Group::kPhones: return "phones";
      case Group::kCards: return "cards";
      case Group::kIps: return "ips";
    }
  }
  return "?";
}

std::string found_kept_describe(const RedactCounts& kept) {
  std::string what, groups;
  for (const auto& [kind, n] : kept) {
    if (n == 0) continue;
    what += fmt::format("{}{} {}", what.empty() ? "" : ", ", n, kind);
    std::string g = redact_group_of(kind);
    if (("," + groups + ",").find("," + g + ",") == std::string::npos) groups += (groups.empty() ? "" : ",") + g;
  }
  if (what.empty()) return "none";
  if (groups == "secrets") return what + " (kept by --no-redact-secrets)";
  return what + fmt::format(" (--redact {} to remove them)", groups);
}

void redact(std::string& text, const RedactOptions& o, RedactCounts& counts, RedactCounts* kept) {
  const auto& regexes = compiled();
  std::vector<tokenizer::Span> spans;
  for (size_t i = 0; i < std::size(kRules); ++i) {
    const Rule& rule = kRules[i];
    const bool on = enabled(rule.group, o);
    if ((!on && !kept) || (rule.needle[0] && text.find(rule.needle) == std::string::npos)) continue;
    if ((rule.group == Group::kPhones && !digit_run(text, 9)) ||
        (rule.group == Group::kCards && !digit_run(text, 13)) || (rule.group == Group::kIps && !ip_candidate(text)))
      continue;
    spans.clear();
    regexes[i]->find_all(text, spans);
    if (spans.empty()) continue;
    if (!on) {  // found and kept: counted only
      size_t last = 0, n = 0;
      for (auto [b, e] : spans) {
        if (b < last || !accept(rule, std::string_view(text).substr(b, e - b))) continue;
        last = e;
        ++n;
      }
      if (n) (*kept)[rule.kind] += n;
      continue;
    }
    std::string out;
    out.reserve(text.size());
    size_t last = 0, n = 0;
    for (auto [b, e] : spans) {
      if (b < last || !accept(rule, std::string_view(text).substr(b, e - b))) continue;
      out.append(text, last, b - last);
      out += rule.placeholder;
      last = e;
      ++n;
    }
    if (n == 0) continue;
    out.append(text, last, std::string::npos);
    text = std::move(out);
    counts[rule.kind] += n;
  }
}

}  // namespace hearth::data
