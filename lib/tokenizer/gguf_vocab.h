// The tokenizer in GGUF metadata, both directions: a hearth Tokenizer -> the `tokenizer.*` keys llama.cpp
// reads, and those keys -> a working Tokenizer (so a .gguf file alone can tokenize and render its chat
// template).
//
// Keys and their meaning follow llama.cpp (src/llama-vocab.cpp, llama_vocab::impl::load) and its converter
// (convert_hf_to_gguf.py, gguf-py vocab.py). Two tokenizer models are supported:
//   "gpt2"  byte-level BPE (GPT-2, Llama 3, Qwen2/3, SmolLM): tokens, token_type, merges and
//           tokenizer.ggml.pre, the name of the pre-tokenizer (see gguf_vocab_tables.h for the names);
//   "llama" SentencePiece-style BPE with byte fallback (Llama 2, Mistral, stories260K): tokens, scores,
//           token_type; merging follows the scores as llama.cpp's SentencePiece tokenizer does.
// Reading builds the equivalent tokenizer.json (+ tokenizer_config.json) and hands it to Tokenizer::from_json,
// so the result encodes, decodes and exposes config() exactly as a tokenizer loaded from files. The
// "Tokenizer metadata" section of docs/gguf.md lists every key. Not here: reading or writing the file
// (io/gguf.h), the model's own keys.
#pragma once

#include <vector>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {

// The tokenizer.* metadata of `tok` (loaded from tokenizer.json, + tokenizer_config.json), in the order
// llama.cpp's converter writes it: tokenizer.ggml.model, .pre (gpt2), .tokens (every id below vocab_size(),
// holes as "[PAD<id>]"), .scores (llama), .token_type, .merges (gpt2), .bos/.eos/.eot/.unknown/.padding
// _token_id when known, .add_bos_token, .add_eos_token, .add_space_prefix (llama, only when false) and
// tokenizer.chat_template (+ .chat_template.<name> and .chat_templates for named templates).
// Throws FormatError naming the tokenizer.json component GGUF cannot express: a pre-tokenizer or normalizer
// not in the table of names, an added token with lstrip/rstrip/single_word, a post-processor adding
// anything but BOS first and EOS last, a SentencePiece-style merge order that scores cannot give, a
// continuing_subword_prefix, duplicate token strings, ... Thread-safe.
std::vector<io::GgufKv> tokenizer_gguf_metadata(const Tokenizer& tok);

// A Tokenizer built from the tokenizer.* metadata of `file` alone. Its config() holds what
// tokenizer_config.json would: bos_token, eos_token, unk_token, pad_token (token strings), add_bos_token,
// add_eos_token and chat_template. Defaults for absent keys are llama.cpp's (model "llama": bos 1, eos 2,
// unknown 0, add_bos_token true; "gpt2": add_bos_token true for llama-bpe only). Throws FormatError naming the
// file and key: tokenizer.ggml.model missing or not "gpt2"/"llama" (e.g. "bert", "t5"), tokenizer.ggml.pre
// missing or not in the table, tokens missing or with duplicates, scores/token_type of another length than
// tokens, merges naming unknown tokens, special token ids out of range, wrong value types.
Tokenizer tokenizer_from_gguf(const io::GgufFile& file);

}  // namespace hearth::tokenizer
