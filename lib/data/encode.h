// Records to token ids with a loss mask (what the trainer learns from), using the model's own tokenizer and
// chat template.
//
// Plain text: [the tokenizer's leading specials, e.g. BOS] + text + EOS; every token but the leading specials
// is a target. A text longer than a sequence is cut into paragraphs ("\n\n"), each tokenized on its own, so
// that it can be split across sequences at paragraph starts (`breaks`); tokenizers for which that changes
// the ids (SentencePiece-style ones that mark a word start with "▁") tokenize the whole text and are split at
// token boundaries instead.
//
// Chat (assistant-only loss): the conversation is rendered once with the chat template (F = render(all
// messages)) and tokenized by chat_prompt_encode (chat/prompt.h), so special-token text in a message is plain
// text, as in every chat prompt hearth builds. For each assistant message i the prompt the model sees at
// inference, A = render(messages[:i], add_generation_prompt=true), and the rendering that ends with that
// message, B = render(messages[:i+1]), give its span in F: it starts where A ends (when F begins with A;
// otherwise where the message's content is found) and ends after the content plus the end-of-turn marker
// that follows the content in B, cut after the first special token (<|im_end|>, <|eot_id|>, </s>) or, with
// no special token, at the end of the line. F is tokenized once; each token's character span comes from
// decoding the ids one by one (StreamDecoder), and a token is a target when its span overlaps an assistant
// span. --train-on all makes every token a target.
//
// Prompt/completion: [leading specials] + prompt + completion + EOS, the completion and EOS are targets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/record.h"
#include "tokenizer/tokenizer.h"

namespace hearth::data {

enum class TrainOn { kAssistant, kAll };

struct TokenizedDoc {
  RecordKind kind = RecordKind::kText;
  std::vector<int32_t> tokens;
  std::vector<uint8_t> mask;     // 1: target
  std::vector<uint32_t> breaks;  // token indices > 0 where a plain text may continue in the next sequence
};

class RecordEncoder {
 public:
  // `origin` names the tokenizer_config.json in error messages. Throws ConfigError when the tokenizer has no
  // EOS token. The tokenizer must outlive the encoder.
  RecordEncoder(const tokenizer::Tokenizer& tokenizer, std::string origin, TrainOn train_on, int64_t seq_len);
  // Tokenizes one (cleaned, redacted) record. Throws FormatError with the reason when the record cannot be
  // used (a chat with no assistant message under --train-on assistant, a template whose output cannot be
  // mapped back). Thread-safe.
  TokenizedDoc encode(const Record& record) const;
  bool paragraph_separable() const { return separable_; }

 private:
  TokenizedDoc encode_text(const std::string& text) const;
  TokenizedDoc encode_chat(const Record& record) const;
  TokenizedDoc encode_completion(const Record& record) const;
  // End offsets (in bytes of the decoded text) of each token of `ids`; checks they decode to `text`.
  std::vector<size_t> token_ends(const std::vector<int32_t>& ids, const std::string& text) const;
  std::string marker_cut(const std::string& suffix) const;

  const tokenizer::Tokenizer& tok_;
  std::string origin_;
  TrainOn train_on_;
  int64_t seq_len_;
  std::vector<int32_t> prefix_;  // encode("", add_special_tokens=true)
  int32_t eos_;
  bool separable_;
  std::vector<std::string> specials_;  // text of every special token
};

}  // namespace hearth::data
