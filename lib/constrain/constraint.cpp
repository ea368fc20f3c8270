// Constrained decoding over a vocabulary trie. See constraint.h.
#include "constrain/constraint.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace hearth::constrain {

TokenGrammar::TokenGrammar(Grammar grammar, std::shared_ptr<const TokenTrie> trie, std::vector<TokenId> stop_ids)
    : grammar_(std::move(grammar)), trie_(std::move(trie)), stop_ids_(std::move(stop_ids)) {
  fits_.resize(grammar_.classes().size());
  for (uint32_t c : grammar_.star_classes()) fits_[c] = trie_->class_fit(grammar_.classes()[c]);
}

TokenConstraint::TokenConstraint(std::shared_ptr<const TokenGrammar> grammar)
    : grammar_(std::move(grammar)), matcher_(grammar_->grammar()) {
  state_ = matcher_.start();
  const TokenTrie& trie = grammar_->trie();
  uint32_t max_depth = 0;
  for (size_t node = 0; node < trie.node_count(); ++node) max_depth = std::max(max_depth, trie.depth(node));
  levels_.resize(max_depth + 1);
}

const std::vector<uint64_t>& TokenConstraint::allowed() {
  const TokenTrie& trie = grammar_->trie();
  allowed_.assign((trie.vocab_size() + 63) / 64, 0);
  if (stopped_) return allowed_;
  if (complete()) {
    for (TokenId id : grammar_->stop_ids()) {
      if (id >= 0 && static_cast<size_t>(id) < trie.vocab_size()) bit_set(allowed_, static_cast<size_t>(id));
    }
  }
  // Inside a starred class (at a code point boundary), every token that fits the class keeps that stack
  // alive unchanged: allow them all, and skip trie subtrees made only of such tokens.
  std::vector<const ClassFit*> loops;
  if (state_.partial_left == 0) {
    const auto& el = grammar_->grammar().elements();
    for (size_t i = 0; i < state_.stacks.size(); ++i) {
      if (state_.stacks.length(i) == 0) continue;
      const Element e = el[state_.stacks.end(i)[-1]];
      if (e.kind != ElementKind::kCharStar) continue;
      const ClassFit* fit = grammar_->fit(e.value);
      if (std::find(loops.begin(), loops.end(), fit) != loops.end()) continue;
      loops.push_back(fit);
      for (size_t w = 0; w < allowed_.size(); ++w) allowed_[w] |= fit->tokens[w];
    }
  }
  levels_[0] = state_;
  // Preorder walk: a node's parent state is levels_[depth - 1], set by the parent, the last node seen at
  // that depth.
  for (size_t node = 1; node < trie.node_count();) {
    const bool covered = std::any_of(loops.begin(), loops.end(), [&](const ClassFit* f) { return f->subtree[node]; });
    const uint32_t d = trie.depth(node);
    if (covered || !matcher_.advance_byte(levels_[d - 1], trie.byte(node), levels_[d])) {
      node = trie.end(node);
      continue;
    }
    // A token may end inside a character (byte-level vocabularies split rare ones): the next token finishes it.
    for (const TokenId* t = trie.tokens_begin(node); t != trie.tokens_end(node); ++t) {
      bit_set(allowed_, static_cast<size_t>(*t));
    }
    ++node;
  }
  return allowed_;
}

size_t TokenConstraint::mask_logits(float* logits, size_t n) {
  const auto& bits = allowed();
  const size_t vocab = grammar_->trie().vocab_size();
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i < vocab && bit_get(bits, i)) {
      ++kept;
    } else {
      logits[i] = -std::numeric_limits<float>::infinity();
    }
  }
  if (kept == 0) throw Error("constrained decoding: no token of the vocabulary can continue the output");
  return kept;
}

void TokenConstraint::accept(TokenId id) {
  const auto& stops = grammar_->stop_ids();
  if (std::find(stops.begin(), stops.end(), id) != stops.end()) {
    if (!complete()) throw Error("constrained decoding: a stop token came before the output was complete");
    stopped_ = true;
    return;
  }
  const std::string* bytes = grammar_->trie().bytes(id);
  if (stopped_ || !bytes || !matcher_.advance(state_, *bytes)) {
    throw Error("constrained decoding: token " + std::to_string(id) + " does not fit the grammar here");
  }
}

}  // namespace hearth::constrain
