// tokenizer.json "post_processor" components (single sequences only): the special tokens added around the
// ids when encode() is asked to add them.
//
// Supported types: TemplateProcessing (the "single" template), ByteLevel (no change to ids), Sequence,
// BertProcessing and RobertaProcessing ([CLS] A [SEP]). Anything else is a FormatError naming the type.
// Also builds the BOS/EOS template transformers' LlamaTokenizerFast derives from add_bos_token/add_eos_token.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

using TokenId = int32_t;

// A single-sequence template: ids before the sequence, ids after it.
struct PostProcessor {
  std::vector<TokenId> prefix;
  std::vector<TokenId> suffix;
  // prefix + ids + suffix.
  void apply(std::vector<TokenId>& ids) const;
  bool empty() const { return prefix.empty() && suffix.empty(); }
};

// The post-processor described by `j` (null JSON: adds nothing). FormatError for unsupported types, a
// template naming an unknown special token, or a pair-only template.
PostProcessor post_processor_from_json(const nlohmann::json& j, const Where& where);

// BOS/EOS around the sequence, as transformers' Llama/Gemma tokenizers build from tokenizer_config.json.
PostProcessor post_processor_from_flags(std::optional<TokenId> bos, bool add_bos, std::optional<TokenId> eos,
                                        bool add_eos, const Where& where);

}  // namespace hearth::tokenizer
