// Constrained decoding: a grammar held against a vocabulary, masking the logits of every token that cannot
// continue an output the grammar allows.
//
// TokenGrammar (immutable, shared by the sequences using one grammar) = a Grammar + the vocabulary's TokenTrie
// + the ids that end generation. TokenConstraint (one per sequence) tracks the output so far and, each step,
// finds the allowed tokens by walking the trie with the Matcher (one byte per trie edge; a dead byte prunes
// the subtree; inside a starred class the tokens that fit it are allowed wholesale, see token_trie.h).
// Stop tokens are allowed exactly when the output so far is complete. Not here: sampling (lib/infer), JSON
// Schema (json_schema.h).
#pragma once

#include <memory>
#include <vector>

#include "constrain/grammar.h"
#include "constrain/matcher.h"
#include "constrain/token_trie.h"

namespace hearth::constrain {

class TokenGrammar {
 public:
  // `stop_ids`: the tokens that end generation (allowed once the output is complete). Precomputes which
  // tokens fit each starred class (cached in the trie, so the second grammar on a vocabulary is cheap).
  TokenGrammar(Grammar grammar, std::shared_ptr<const TokenTrie> trie, std::vector<TokenId> stop_ids);

  const Grammar& grammar() const { return grammar_; }
  const TokenTrie& trie() const { return *trie_; }
  const std::vector<TokenId>& stop_ids() const { return stop_ids_; }
  // The fit of class `class_index` when it is used starred, else nullptr.
  const ClassFit* fit(uint32_t class_index) const {
    return class_index < fits_.size() ? fits_[class_index].get() : nullptr;
  }

 private:
  Grammar grammar_;
  std::shared_ptr<const TokenTrie> trie_;
  std::vector<TokenId> stop_ids_;
  std::vector<std::shared_ptr<const ClassFit>> fits_;  // by class index
};

class TokenConstraint {
 public:
  explicit TokenConstraint(std::shared_ptr<const TokenGrammar> grammar);

  // The tokens allowed next, one bit per id of the vocabulary (TokenTrie::vocab_size()).
  const std::vector<uint64_t>& allowed();
  // Sets logits[i] to -infinity for every i not allowed (i past the vocabulary never is). `n`: row length.
  // Returns how many stay; throws hearth::Error when none does (the grammar cannot go on with this vocabulary).
  size_t mask_logits(float* logits, size_t n);
  // Records the chosen token. Throws hearth::Error when it is not allowed.
  void accept(TokenId id);

  // The output so far is a complete match (a stop token may come now).
  bool complete() const { return Matcher::accepting(state_); }
  // Complete, and the grammar allows nothing more: generation should end here.
  bool must_stop() const { return complete() && !Matcher::can_continue(state_); }
  const TokenGrammar& grammar() const { return *grammar_; }

 private:
  std::shared_ptr<const TokenGrammar> grammar_;
  Matcher matcher_;
  MatchState state_;
  bool stopped_ = false;              // a stop token was accepted
  std::vector<MatchState> levels_;    // walk scratch: the state after each depth of the trie path
  std::vector<uint64_t> allowed_;
};

}  // namespace hearth::constrain
