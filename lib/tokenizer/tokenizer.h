// A Hugging Face `tokenizer.json` tokenizer, in C++, giving exactly the ids HF tokenizers gives.
//
// Reads tokenizer.json (the HF tokenizers serialization) plus tokenizer_config.json / special_tokens_map.json
// beside it. Supports BPE models of both families: byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM) and
// SentencePiece-style BPE (Llama 2, Mistral, stories260K). Any component it does not support is a
// FormatError naming the component, never a silent approximation. See docs/tokenizers.md.
// Not here: chat templates (lib/chat), tensors (no libtorch in this library).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::tokenizer {

using TokenId = int32_t;

class BpeModel;

struct EncodeOptions {
  // Add the special tokens the tokenizer's post-processor / tokenizer_config.json asks for (e.g. BOS).
  bool add_special_tokens = true;
  // Recognize added/special tokens written in the text (e.g. "<|im_start|>"). false treats them as plain
  // text (hearth --no-special, API flags).
  bool parse_special = true;
};

class Tokenizer {
 public:
  // Loads DIR/tokenizer.json (+ tokenizer_config.json, special_tokens_map.json when present), or, for a
  // .gguf file, the tokenizer its tokenizer.ggml.* metadata describes (gguf_vocab.h).
  // Throws IoError if tokenizer.json is missing/unreadable, FormatError if malformed or unsupported
  // (the message names the file and the JSON field or metadata key).
  static Tokenizer load(const std::filesystem::path& dir);
  // Same, from already-parsed JSON; `config` may be null. `origin` names the source in error messages.
  static Tokenizer from_json(const nlohmann::json& tokenizer_json, const nlohmann::json& config,
                             const std::string& origin);
  // Same, with the BPE model built already from its tables (bpe.h): tokenizer_json's "model" then holds its
  // options only. For vocabularies read from GGUF metadata (gguf_vocab_read.cpp).
  static Tokenizer from_json(const nlohmann::json& tokenizer_json, std::unique_ptr<BpeModel> model,
                             const nlohmann::json& config, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Text -> ids, exactly as HF `tokenizer(text, add_special_tokens=...)`. Thread-safe (const).
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // As above, where `plain_spans` (byte ranges [begin, end) of `text`, sorted and disjoint) hold someone
  // else's text, such as chat message content in a rendered template (chat/prompt.h): with parse_special, a
  // special token overlapping a span is not recognized but encoded as the plain text it is, as
  // parse_special=false would; the ids of the rest are as above, so spans without special-token text
  // change nothing. Throws hearth::Error when the spans are out of order or out of range, or `text` is
  // not valid UTF-8 (sanitizing it would move the offsets).
  std::vector<TokenId> encode(std::string_view text, const EncodeOptions& options,
                              const std::vector<std::pair<size_t, size_t>>& plain_spans) const;
  // Ids -> text, as HF `decode(ids, skip_special_tokens=...)`. Unknown ids throw FormatError.
  std::string decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false) const;

  // Every id's bytes as it adds them to a text after other tokens (decode without UTF-8 repair: "Ġthe" ->
  // " the", "<0x0A>" -> "\n", the first of a character's byte tokens -> that one byte), indexed by id;
  // std::nullopt for special tokens and ids without a token. For matching tokens against a grammar.
  std::vector<std::optional<std::string>> token_bytes_all() const;
  // One id's, as above (std::nullopt for a special token or an unknown id). Thread-safe.
  std::optional<std::string> token_bytes(TokenId id) const;

  // Number of ids (max id + 1 over the model vocabulary and added tokens).
  size_t vocab_size() const;
  // The token string of an id ("Ġthe", "▁the", "<|im_end|>"); std::nullopt when out of range.
  std::optional<std::string> id_to_token(TokenId id) const;
  std::optional<TokenId> token_to_id(std::string_view token) const;
  bool is_special(TokenId id) const;
  // The text of every special added token ("<|im_end|>", "</s>"): what parse_special=false stops
  // recognizing. In added_tokens order.
  std::vector<std::string> special_tokens() const;

  // Special tokens named in tokenizer_config.json / special_tokens_map.json, when present.
  std::optional<TokenId> bos_id() const;
  std::optional<TokenId> eos_id() const;
  std::optional<TokenId> pad_id() const;
  // The parsed tokenizer_config.json (null JSON when the file is absent): chat_template, bos_token, ...
  const nlohmann::json& config() const;
  // The tokenizer.json it was built from minus model.vocab and model.merges (normalizer, pre_tokenizer,
  // post_processor, decoder, added_tokens, the model's options): for describing it in other formats (GGUF).
  const nlohmann::json& definition() const;
  // The BPE merges as (left, right) token ids, lowest rank first.
  std::vector<std::pair<TokenId, TokenId>> merges() const;
  // One line for `hearth inspect`: model type, vocab size, special tokens.
  std::string summary() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class StreamDecoder;
};

// Incremental decoder for streaming: feed ids one at a time, get the text that is now final.
// Never returns a partial UTF-8 sequence; the concatenation of all push() results plus flush() equals
// decode(all ids), except (as with HF's DecodeStream) where byte-fallback tokens (<0x41>) form a run that is
// not valid UTF-8 as a whole: decode() then gives U+FFFD for every byte of the run, also for bytes push() already
// returned as text; and with a Strip decoder of more than one leading character, which can drop one at a chunk
// boundary (stream_decoder.cpp). Not thread-safe; one per stream. The Tokenizer must outlive it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  // Adds one id; returns the text it completes (often "", e.g. while a multi-byte character or an emoji is
  // still split across tokens; bytes that can no longer form a character come out at once, as U+FFFD). Unknown
  // ids throw FormatError.
  std::string push(TokenId id);
  // Returns whatever is still held back (a character the ids left unfinished, as U+FFFD) and resets the
  // decoder for a new stream.
  std::string flush();

 private:
  // Works like HF tokenizers' DecodeStream: ids_ holds the ids of the last emitted chunk (context, so that
  // first-token rules such as Strip/Metaspace apply as in a full decode) followed by ids not yet emitted.
  const Tokenizer* tokenizer_;
  bool skip_special_;
  std::vector<TokenId> ids_;
  size_t emitted_bytes_ = 0;  // bytes of decode(ids_[0, prefix_index_)) already returned
  size_t prefix_index_ = 0;   // ids_[0, prefix_index_) is the context chunk

  size_t emittable() const;
};

}  // namespace hearth::tokenizer
