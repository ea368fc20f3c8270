// Running a Grammar over bytes: which texts are still a prefix of something the grammar matches.
//
// The state is a set of parse stacks (as llama.cpp's grammar sampler keeps them): each stack lists grammar
// positions still to match, the one to match next on top, always a character element; an empty stack means
// the grammar's root is complete. Ambiguity (anyOf, optional parts) is several stacks at once. Input is bytes;
// a code point split across bytes (and across tokens) is held as a partial UTF-8 value, and a byte is
// accepted only while some stack can still take a code point that begins with the bytes so far.
// Not here: tokens and the vocabulary (token_mask.h).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "constrain/grammar.h"

namespace hearth::constrain {

// Whether `cp`, decoded from a UTF-8 sequence of `continuation` continuation bytes, is well-formed: not an
// overlong form (F0 80 81 BB for '{'), not a surrogate, not past U+10FFFF.
inline bool utf8_well_formed(uint32_t cp, int continuation) {
  static constexpr uint32_t kMin[4] = {0, 0x80, 0x800, 0x10000};
  return cp >= kMin[continuation] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

// A set of stacks, stored flat. Value type; copying it copies the state.
class StackSet {
 public:
  static constexpr size_t kMaxStacks = 4096;  // add() throws hearth::Error beyond
  size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  // Stack i: its positions, bottom first.
  const uint32_t* begin(size_t i) const { return data_.data() + (i ? ends_[i - 1] : 0); }
  const uint32_t* end(size_t i) const { return data_.data() + ends_[i]; }
  size_t length(size_t i) const { return end(i) - begin(i); }
  void clear() {
    data_.clear();
    ends_.clear();
  }
  // Appends a copy of [b, e) unless an equal stack is already in the set.
  void add(const uint32_t* b, const uint32_t* e);

 private:
  std::vector<uint32_t> data_;
  std::vector<uint32_t> ends_;
};

// Where a match stands: the live stacks and a code point begun but not finished.
struct MatchState {
  StackSet stacks;
  uint32_t partial_value = 0;  // bits of the code point so far
  int partial_left = 0;        // continuation bytes still expected (0: at a code point boundary)
  int partial_length = 0;      // continuation bytes of that code point in all
  bool dead() const { return stacks.empty(); }
};

// Runs one grammar. Holds only the grammar and scratch space: one Matcher per thread.
class Matcher {
 public:
  // `grammar` must outlive the matcher.
  explicit Matcher(const Grammar& grammar);

  // The state before any input.
  MatchState start();
  // `from` after one more byte, into `to` (`to` must not be `from`). Returns false (and `to` is dead)
  // when the byte cannot continue any match.
  bool advance_byte(const MatchState& from, uint8_t byte, MatchState& to);
  // `state` after `bytes`; false (state dead) when some byte did not fit.
  bool advance(MatchState& state, std::string_view bytes);
  // Whether the input so far is a complete match (some stack is empty, at a code point boundary).
  static bool accepting(const MatchState& state);
  // Whether the grammar allows more input after the input so far.
  static bool can_continue(const MatchState& state) { return state.partial_left > 0 || has_nonempty(state); }
  const Grammar& grammar() const { return *grammar_; }

 private:
  static bool has_nonempty(const MatchState& state);
  // Adds to `out` every stack `work` can expand to whose top is a character element (or that is empty).
  void expand(StackSet& out);
  void advance_code_point(const StackSet& from, uint32_t cp, StackSet& to);
  bool partial_possible(const StackSet& stacks, uint32_t value, int left, int length) const;

  const Grammar* grammar_;
  std::vector<uint32_t> work_;  // the stack being expanded
  int depth_ = 0;
};

}  // namespace hearth::constrain
