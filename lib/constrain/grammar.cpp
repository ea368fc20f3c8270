// Grammars and their builder. See grammar.h.
#include "constrain/grammar.h"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace hearth::constrain {

namespace {
constexpr uint32_t kMaxCodePoint = 0x10FFFF;

std::string cp_text(uint32_t cp) {
  if (cp == '\\' || cp == ']' || cp == '-' || cp == '^' || cp == '"') return std::string("\\") + char(cp);
  if (cp >= 0x20 && cp < 0x7F) return std::string(1, char(cp));
  return fmt::format("\\u{{{:X}}}", cp);
}

std::string class_text(const CharClass& c) {
  const auto& r = c.ranges();
  if (r.size() == 1 && r[0].first == r[0].second) return "\"" + cp_text(r[0].first) + "\"";
  std::string out = "[";
  for (const auto& [lo, hi] : r) out += lo == hi ? cp_text(lo) : cp_text(lo) + "-" + cp_text(hi);
  return out + "]";
}
}  // namespace

CharClass::CharClass(std::vector<std::pair<uint32_t, uint32_t>> ranges) {
  std::sort(ranges.begin(), ranges.end());
  for (const auto& [lo, hi] : ranges) {
    if (lo > hi) continue;
    if (!ranges_.empty() && lo <= ranges_.back().second + 1) {
      ranges_.back().second = std::max(ranges_.back().second, hi);
    } else {
      ranges_.emplace_back(lo, hi);
    }
  }
}

CharClass CharClass::complement() const {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : ranges_) {
    if (lo > next) out.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.emplace_back(next, kMaxCodePoint);
  return CharClass(std::move(out));
}

bool CharClass::contains(uint32_t cp) const { return intersects(cp, cp); }

bool CharClass::intersects(uint32_t lo, uint32_t hi) const {
  // The first range whose end is >= lo.
  auto it = std::lower_bound(ranges_.begin(), ranges_.end(), lo,
                             [](const std::pair<uint32_t, uint32_t>& r, uint32_t v) { return r.second < v; });
  return it != ranges_.end() && it->first <= hi;
}

std::vector<uint32_t> Grammar::star_classes() const {
  std::vector<uint32_t> out;
  for (const Element& e : elements_) {
    if (e.kind == ElementKind::kCharStar) out.push_back(e.value);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string Grammar::to_string() const {
  std::string out;
  for (uint32_t r = 0; r < alternatives_.size(); ++r) {
    out += names_[r] + " ::=";
    for (size_t a = 0; a < alternatives_[r].size(); ++a) {
      out += a ? " |" : "";
      for (uint32_t p = alternatives_[r][a]; elements_[p].kind != ElementKind::kEnd; ++p) {
        const Element& e = elements_[p];
        if (e.kind == ElementKind::kRule) out += " " + names_[e.value];
        else out += " " + class_text(classes_[e.value]) + (e.kind == ElementKind::kCharStar ? "*" : "");
      }
      if (elements_[alternatives_[r][a]].kind == ElementKind::kEnd) out += " \"\"";
    }
    out += "\n";
  }
  return out;
}

uint32_t GrammarBuilder::rule(std::string name) {
  const int n = name_count_[name]++;
  names_.push_back(n == 0 ? name : fmt::format("{}-{}", name, n));
  rules_.emplace_back();
  return static_cast<uint32_t>(rules_.size() - 1);
}

void GrammarBuilder::add(uint32_t rule, Sequence alternative) { rules_.at(rule).push_back(std::move(alternative)); }

uint32_t GrammarBuilder::class_index(const CharClass& c) {
  auto [it, inserted] = class_ids_.emplace(c, static_cast<uint32_t>(classes_.size()));
  if (inserted) classes_.push_back(c);
  return it->second;
}

Element GrammarBuilder::chars(const CharClass& c) { return {ElementKind::kChar, class_index(c)}; }
Element GrammarBuilder::star(const CharClass& c) { return {ElementKind::kCharStar, class_index(c)}; }

Sequence GrammarBuilder::literal(std::string_view utf8) {
  Sequence out;
  size_t pos = 0;
  while (pos < utf8.size()) out.push_back(chars(CharClass::single(tokenizer::utf8_next(utf8, pos))));
  return out;
}

uint32_t GrammarBuilder::repeat(const Sequence& item, int min, int max, const std::string& name) {
  // x{min,max} = x x ... (min times) then tail(max - min); tail(k) ::= "" | x tail(k-1); unbounded: t ::= "" | x t.
  const uint32_t top = rule(name);
  Sequence head;
  for (int i = 0; i < min; ++i) head = head + item;
  if (max < 0) {
    const uint32_t tail = rule(name + "-more");
    add(tail, {});
    add(tail, item + ref(tail));
    add(top, head + ref(tail));
    return top;
  }
  uint32_t next = rule(name + "-0");
  add(next, {});
  for (int k = 1; k <= max - min; ++k) {
    const uint32_t t = rule(fmt::format("{}-{}", name, k));
    add(t, {});
    add(t, item + ref(next));
    next = t;
  }
  add(top, head + ref(next));
  return top;
}

void GrammarBuilder::check_left_recursion() const {
  // nullable[r]: the rule can match the empty string (fixed point).
  std::vector<bool> nullable(rules_.size(), false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (nullable[r]) continue;
      for (const Sequence& alt : rules_[r]) {
        const bool all = std::all_of(alt.begin(), alt.end(), [&](const Element& e) {
          return e.kind == ElementKind::kCharStar || (e.kind == ElementKind::kRule && nullable[e.value]);
        });
        if (all) {
          nullable[r] = true;
          changed = true;
          break;
        }
      }
    }
  }
  // Depth-first over "r can start with rule s" edges; a back edge is left recursion.
  std::vector<int> state(rules_.size(), 0);  // 0 unvisited, 1 on the path, 2 done
  std::function<void(size_t)> visit = [&](size_t r) {
    state[r] = 1;
    for (const Sequence& alt : rules_[r]) {
      for (const Element& e : alt) {
        if (e.kind == ElementKind::kRule) {
          if (state[e.value] == 1) throw Error("grammar: rule '" + names_[e.value] + "' is left-recursive");
          if (state[e.value] == 0) visit(e.value);
          if (!nullable[e.value]) break;
        } else if (e.kind == ElementKind::kChar) {
          break;
        }
      }
    }
    state[r] = 2;
  };
  for (size_t r = 0; r < rules_.size(); ++r) {
    if (state[r] == 0) visit(r);
  }
}

Grammar GrammarBuilder::build(uint32_t root) {
  for (size_t r = 0; r < rules_.size(); ++r) {
    if (rules_[r].empty()) throw Error("grammar: rule '" + names_[r] + "' has no alternative");
  }
  if (root >= rules_.size()) throw Error("grammar: no root rule");
  check_left_recursion();
  Grammar g;
  for (const auto& alts : rules_) {
    g.alternatives_.emplace_back();
    for (const Sequence& alt : alts) {
      g.alternatives_.back().push_back(static_cast<uint32_t>(g.elements_.size()));
      for (const Element& e : alt) {
        if (e.kind == ElementKind::kEnd) throw Error("grammar: an alternative holds an end element");
        g.elements_.push_back(e);
      }
      g.elements_.push_back({ElementKind::kEnd, 0});
    }
  }
  g.classes_ = classes_;
  g.names_ = names_;
  g.root_ = root;
  return g;
}

Sequence operator+(Sequence a, const Sequence& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Sequence operator+(Sequence a, const Element& b) {
  a.push_back(b);
  return a;
}

}  // namespace hearth::constrain
