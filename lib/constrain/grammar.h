// Context-free grammars over Unicode code points: the form every output constraint is compiled to (a JSON
// Schema, "any JSON object", a tool call in a model family's format), and what Matcher runs.
//
// A grammar is a set of rules; a rule is a list of alternatives; an alternative is a sequence of elements:
// a character class (one code point from a set of ranges), a starred character class (zero or more code
// points from the set: the inside of a JSON string, kept as one element so that TokenMask can allow every
// token made only of such characters at once), or a reference to a rule. The same shape as llama.cpp's GBNF
// grammars, built in code rather than parsed from text. Left recursion is refused (Matcher could not run it).
// Not here: running a grammar (matcher.h), tokens (token_mask.h), JSON Schema (json_schema.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::constrain {

// A set of code points, as sorted, disjoint, non-adjacent inclusive ranges.
class CharClass {
 public:
  CharClass() = default;
  // The union of `ranges` (any order, may overlap).
  explicit CharClass(std::vector<std::pair<uint32_t, uint32_t>> ranges);
  static CharClass single(uint32_t cp) { return CharClass({{cp, cp}}); }
  // Every code point (0..0x10FFFF) not in this class.
  CharClass complement() const;

  bool contains(uint32_t cp) const;
  // Whether any code point in [lo, hi] is in the class.
  bool intersects(uint32_t lo, uint32_t hi) const;
  const std::vector<std::pair<uint32_t, uint32_t>>& ranges() const { return ranges_; }
  bool operator<(const CharClass& o) const { return ranges_ < o.ranges_; }
  bool operator==(const CharClass& o) const { return ranges_ == o.ranges_; }

 private:
  std::vector<std::pair<uint32_t, uint32_t>> ranges_;
};

enum class ElementKind : uint8_t {
  kEnd,       // ends an alternative
  kChar,      // one code point of classes[value]
  kCharStar,  // zero or more code points of classes[value]
  kRule,      // rule `value`
};

struct Element {
  ElementKind kind = ElementKind::kEnd;
  uint32_t value = 0;
};

// One piece of an alternative while building: a class, a starred class, or a rule reference.
using Sequence = std::vector<Element>;

// A finished grammar. Immutable; safe to share between threads.
class Grammar {
 public:
  // Every alternative's elements, each alternative ended by a kEnd element.
  const std::vector<Element>& elements() const { return elements_; }
  // Rule -> the positions in elements() where its alternatives start (an empty alternative is a kEnd).
  const std::vector<std::vector<uint32_t>>& alternatives() const { return alternatives_; }
  const std::vector<CharClass>& classes() const { return classes_; }
  const std::string& rule_name(uint32_t rule) const { return names_[rule]; }
  uint32_t root() const { return root_; }
  // The classes used starred (TokenMask precomputes which tokens fit inside each).
  std::vector<uint32_t> star_classes() const;
  // The grammar in GBNF-like text, one rule per line (for error messages, logs and tests).
  std::string to_string() const;

 private:
  friend class GrammarBuilder;
  std::vector<Element> elements_;
  std::vector<std::vector<uint32_t>> alternatives_;
  std::vector<CharClass> classes_;
  std::vector<std::string> names_;
  uint32_t root_ = 0;
};

// Builds a Grammar: declare rules, give them alternatives made of sequences, then build().
// Not thread-safe.
class GrammarBuilder {
 public:
  // A new rule with no alternatives yet; `name` is for to_string() and errors (made unique if taken).
  uint32_t rule(std::string name);
  // Adds an alternative (may be empty: the rule matches nothing).
  void add(uint32_t rule, Sequence alternative);

  // Elements: one code point of a class, zero or more of them, a rule, the UTF-8 text `s` literally.
  Element chars(const CharClass& c);
  Element star(const CharClass& c);
  static Element ref(uint32_t rule) { return {ElementKind::kRule, rule}; }
  Sequence literal(std::string_view utf8);

  // A rule matching `item` between `min` and `max` times (max < 0: unbounded).
  uint32_t repeat(const Sequence& item, int min, int max, const std::string& name);

  // Rules and elements so far (for callers that bound a grammar's size).
  size_t rule_count() const { return rules_.size(); }
  // Checks that every rule has an alternative and none is left-recursive; throws hearth::Error otherwise.
  Grammar build(uint32_t root);

 private:
  uint32_t class_index(const CharClass& c);
  void check_left_recursion() const;
  std::vector<std::vector<Sequence>> rules_;
  std::vector<std::string> names_;
  std::map<std::string, int> name_count_;
  std::vector<CharClass> classes_;
  std::map<CharClass, uint32_t> class_ids_;
};

// a + b: the sequence a then b.
Sequence operator+(Sequence a, const Sequence& b);
Sequence operator+(Sequence a, const Element& b);

}  // namespace hearth::constrain
