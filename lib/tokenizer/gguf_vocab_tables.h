// What both directions of the GGUF tokenizer mapping (gguf_vocab.h) share: the pre-tokenizer names hearth
// knows, llama.cpp's token types, and the BPE merges that reproduce llama.cpp's SentencePiece tokenizer.
//
// The names are llama.cpp's `tokenizer.ggml.pre` values (src/llama-vocab.cpp, llama_vocab::impl::load;
// convert_hf_to_gguf.py picks them). Each stands for a whole Hugging Face pipeline: normalizer, pre-tokenizer
// and the BPE model's ignore_merges flag, written here as tokenizer.json JSON. Internal to the tokenizer
// library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace hearth::tokenizer {

using TokenId = int32_t;

// llama.cpp's token types (gguf-py TokenType, llama.h llama_token_type): tokenizer.ggml.token_type values.
enum class GgufTokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// A byte-level BPE pre-tokenizer llama.cpp knows by name.
struct GgufPreTokenizer {
  std::string name;                  // what hearth writes as tokenizer.ggml.pre
  std::vector<std::string> aliases;  // other names llama.cpp gives the same pipeline (read only)
  nlohmann::json normalizer;         // tokenizer.json "normalizer" (null: none)
  nlohmann::json pre_tokenizer;      // tokenizer.json "pre_tokenizer"
  bool ignore_merges = false;        // model.ignore_merges
  bool add_bos = false;              // llama.cpp's add_bos when tokenizer.ggml.add_bos_token is absent
};

// The table: gpt-2, llama-bpe, qwen2, smollm.
const std::vector<GgufPreTokenizer>& gguf_pre_tokenizers();
// The entry named `name` (or one of its aliases); nullptr when hearth does not know it.
const GgufPreTokenizer* gguf_pre_tokenizer_by_name(std::string_view name);
// The entry whose pipeline equals the given tokenizer.json components (fields that do not change the ids,
// such as trim_offsets, are ignored); nullptr when none does.
const GgufPreTokenizer* gguf_pre_tokenizer_matching(const nlohmann::json& normalizer,
                                                    const nlohmann::json& pre_tokenizer, bool ignore_merges);
// "gpt-2, llama-bpe (llama3, llama-v3), qwen2, smollm", for messages and docs.
std::string gguf_pre_tokenizer_names();

// The SentencePiece-style pipeline of tokenizer.json that llama.cpp's "llama" model runs: spaces become "▁"
// and, with add_space_prefix, every stretch of text between special tokens starts with one (llama.cpp's
// add_space_prefix, transformers' legacy Llama tokenizer); decoding undoes both and joins byte tokens.
nlohmann::json spm_normalizer(bool add_space_prefix);
nlohmann::json spm_decoder(bool add_space_prefix);

// The merges under which BPE gives the ids llama.cpp's SentencePiece tokenizer (llm_tokenizer_spm) gives.
// That tokenizer merges, among adjacent symbols whose concatenation is a token, the one whose token has the
// highest score (leftmost among equal scores). As BPE merges: every split of a token into two tokens (on
// UTF-8 character boundaries), tokens by descending score then ascending id, the splits of one token by
// (left id, right id) as transformers' SentencePiece converter orders them. `tokens` and `scores` have one
// entry per id and no duplicate token strings. The result lists (left, right) ids.
std::vector<std::pair<TokenId, TokenId>> spm_merges_from_scores(const std::vector<std::string>& tokens,
                                                                const std::vector<float>& scores);

// The "<0xAB>" token string of a byte.
std::string gguf_byte_token(unsigned byte);
// True for "<0x00>" .. "<0xFF>" (either case of hex digits, as llama.cpp's converter accepts).
bool is_gguf_byte_token(std::string_view token);

}  // namespace hearth::tokenizer
