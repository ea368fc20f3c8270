// Grammar matching over bytes. See matcher.h.
#include "constrain/matcher.h"

#include <algorithm>

#include "core/error.h"

namespace hearth::constrain {

void StackSet::add(const uint32_t* b, const uint32_t* e) {
  // An ambiguous grammar (many overlapping anyOf branches) could multiply the parses without bound.
  if (size() >= kMaxStacks) throw Error("grammar: over 4096 parses at once; the schema is too ambiguous to enforce");
  const size_t n = static_cast<size_t>(e - b);
  for (size_t i = 0; i < size(); ++i) {
    if (length(i) == n && std::equal(b, e, begin(i))) return;
  }
  data_.insert(data_.end(), b, e);
  ends_.push_back(static_cast<uint32_t>(data_.size()));
}

Matcher::Matcher(const Grammar& grammar) : grammar_(&grammar) {}

MatchState Matcher::start() {
  MatchState s;
  const auto& el = grammar_->elements();
  for (uint32_t alt : grammar_->alternatives()[grammar_->root()]) {
    work_.clear();
    if (el[alt].kind != ElementKind::kEnd) work_.push_back(alt);
    expand(s.stacks);
  }
  return s;
}

// work_ is used as a stack that is changed and restored, so expansion allocates nothing once warm.
void Matcher::expand(StackSet& out) {
  if (++depth_ > 100000) throw Error("grammar: expansion too deep");
  const auto& el = grammar_->elements();
  if (work_.empty() || el[work_.back()].kind == ElementKind::kChar) {
    out.add(work_.data(), work_.data() + work_.size());
    --depth_;
    return;
  }
  const uint32_t p = work_.back();
  const Element e = el[p];
  if (e.kind == ElementKind::kCharStar) out.add(work_.data(), work_.data() + work_.size());  // stay in the loop
  // Leave the star, or enter the rule: continue after p, with the rule's alternatives on top.
  work_.pop_back();
  const bool has_next = el[p + 1].kind != ElementKind::kEnd;
  if (has_next) work_.push_back(p + 1);
  if (e.kind == ElementKind::kCharStar) {
    expand(out);
  } else {
    for (uint32_t alt : grammar_->alternatives()[e.value]) {
      const bool nonempty = el[alt].kind != ElementKind::kEnd;
      if (nonempty) work_.push_back(alt);
      expand(out);
      if (nonempty) work_.pop_back();
    }
  }
  if (has_next) work_.pop_back();
  work_.push_back(p);
  --depth_;
}

void Matcher::advance_code_point(const StackSet& from, uint32_t cp, StackSet& to) {
  const auto& el = grammar_->elements();
  const auto& classes = grammar_->classes();
  for (size_t i = 0; i < from.size(); ++i) {
    if (from.length(i) == 0) continue;
    const uint32_t p = from.end(i)[-1];
    const Element e = el[p];
    if (!classes[e.value].contains(cp)) continue;
    if (e.kind == ElementKind::kCharStar) {  // the loop takes it: stay in it, or leave it next
      work_.assign(from.begin(i), from.end(i));
      expand(to);
      continue;
    }
    work_.assign(from.begin(i), from.end(i) - 1);
    if (el[p + 1].kind != ElementKind::kEnd) work_.push_back(p + 1);
    expand(to);
  }
}

bool Matcher::partial_possible(const StackSet& stacks, uint32_t value, int left, int length) const {
  // The code points the bytes so far can still become, less overlong forms, surrogates and past U+10FFFF.
  static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
  const uint32_t lo = std::max(value << (6 * left), kMin[length]);
  const uint32_t hi = std::min<uint32_t>(value << (6 * left) | ((1u << (6 * left)) - 1), 0x10FFFF);
  if (lo > hi || (lo >= 0xD800 && hi <= 0xDFFF)) return false;
  const auto& el = grammar_->elements();
  for (size_t i = 0; i < stacks.size(); ++i) {
    if (stacks.length(i) == 0) continue;
    if (grammar_->classes()[el[stacks.end(i)[-1]].value].intersects(lo, hi)) return true;
  }
  return false;
}

bool Matcher::advance_byte(const MatchState& from, uint8_t byte, MatchState& to) {
  to.stacks.clear();
  to.partial_value = 0;
  to.partial_left = 0;
  to.partial_length = 0;
  if (from.partial_left > 0) {
    if ((byte & 0xC0) != 0x80) return false;
    const uint32_t value = (from.partial_value << 6) | (byte & 0x3F);
    if (from.partial_left > 1) {
      if (!partial_possible(from.stacks, value, from.partial_left - 1, from.partial_length)) return false;
      to.stacks = from.stacks;
      to.partial_value = value;
      to.partial_left = from.partial_left - 1;
      to.partial_length = from.partial_length;
      return true;
    }
    if (!utf8_well_formed(value, from.partial_length)) return false;
    advance_code_point(from.stacks, value, to.stacks);
    return !to.stacks.empty();
  }
  if (byte < 0x80) {
    advance_code_point(from.stacks, byte, to.stacks);
    return !to.stacks.empty();
  }
  int left = 0;
  uint32_t value = 0;
  if ((byte & 0xE0) == 0xC0) left = 1, value = byte & 0x1F;
  else if ((byte & 0xF0) == 0xE0) left = 2, value = byte & 0x0F;
  else if ((byte & 0xF8) == 0xF0) left = 3, value = byte & 0x07;
  else return false;  // a continuation byte or 0xF8..0xFF where a code point must begin
  if (!partial_possible(from.stacks, value, left, left)) return false;
  to.stacks = from.stacks;
  to.partial_value = value;
  to.partial_left = left;
  to.partial_length = left;
  return true;
}

bool Matcher::advance(MatchState& state, std::string_view bytes) {
  MatchState next;
  for (char c : bytes) {
    if (!advance_byte(state, static_cast<uint8_t>(c), next)) {
      state.stacks.clear();
      return false;
    }
    std::swap(state, next);
  }
  return true;
}

bool Matcher::accepting(const MatchState& state) {
  if (state.partial_left > 0) return false;
  for (size_t i = 0; i < state.stacks.size(); ++i) {
    if (state.stacks.length(i) == 0) return true;
  }
  return false;
}

bool Matcher::has_nonempty(const MatchState& state) {
  for (size_t i = 0; i < state.stacks.size(); ++i) {
    if (state.stacks.length(i) > 0) return true;
  }
  return false;
}

}  // namespace hearth::constrain
