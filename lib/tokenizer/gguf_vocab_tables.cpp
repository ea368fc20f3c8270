// Pre-tokenizer names, token types and SentencePiece merges for GGUF tokenizer metadata. See
// gguf_vocab_tables.h.
#include "tokenizer/gguf_vocab_tables.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

namespace {

// The Split regexes of the Hugging Face tokenizer.json files (Llama 3, Qwen2/2.5/3); llama.cpp's own
// spellings of them differ only in writing (?i:'s|...) as '[sS]|...
const char* const kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

nlohmann::json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", use_regex}};
}

nlohmann::json split_then_byte_level(const char* regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
            byte_level(false)}}};
}

std::vector<GgufPreTokenizer> make_table() {
  std::vector<GgufPreTokenizer> table;
  // GPT-2 (and every tokenizer that kept its ByteLevel regex).
  table.push_back({"gpt-2", {}, nullptr, byte_level(true), false, false});
  // Llama 3 / 3.1 / 3.2: digits in groups of up to three; llama.cpp adds BOS by default.
  table.push_back({"llama-bpe", {"llama3", "llama-v3"}, nullptr, split_then_byte_level(kLlama3Regex), true, true});
  // Qwen2 / 2.5 / 3: single digits, NFC first.
  table.push_back({"qwen2", {}, {{"type", "NFC"}}, split_then_byte_level(kQwen2Regex), false, false});
  // SmolLM / SmolLM2 (StarCoder style): single digits, then the GPT-2 regex.
  table.push_back(
      {"smollm",
       {},
       nullptr,
       {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}},
       false,
       false});
  return table;
}

// `j` without the fields that do not change the ids (offsets tracking), recursively.
nlohmann::json without_offset_fields(const nlohmann::json& j) {
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : j) out.push_back(without_offset_fields(item));
    return out;
  }
  if (!j.is_object()) return j;
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, value] : j.items()) {
    if (key != "trim_offsets") out[key] = without_offset_fields(value);
  }
  return out;
}

}  // namespace

const std::vector<GgufPreTokenizer>& gguf_pre_tokenizers() {
  static const std::vector<GgufPreTokenizer> table = make_table();
  return table;
}

const GgufPreTokenizer* gguf_pre_tokenizer_by_name(std::string_view name) {
  for (const auto& entry : gguf_pre_tokenizers()) {
    if (entry.name == name) return &entry;
    for (const auto& alias : entry.aliases) {
      if (alias == name) return &entry;
    }
  }
  return nullptr;
}

const GgufPreTokenizer* gguf_pre_tokenizer_matching(const nlohmann::json& normalizer,
                                                    const nlohmann::json& pre_tokenizer, bool ignore_merges) {
  const nlohmann::json norm = without_offset_fields(normalizer);
  const nlohmann::json pre = without_offset_fields(pre_tokenizer);
  for (const auto& entry : gguf_pre_tokenizers()) {
    if (entry.normalizer == norm && entry.pre_tokenizer == pre && entry.ignore_merges == ignore_merges) {
      return &entry;
    }
  }
  return nullptr;
}

std::string gguf_pre_tokenizer_names() {
  std::string names;
  for (const auto& entry : gguf_pre_tokenizers()) {
    if (!names.empty()) names += ", ";
    names += entry.name;
    if (!entry.aliases.empty()) {
      names += " (";
      for (size_t i = 0; i < entry.aliases.size(); ++i) names += (i ? ", " : "") + entry.aliases[i];
      names += ")";
    }
  }
  return names;
}

nlohmann::json spm_normalizer(bool add_space_prefix) {
  const nlohmann::json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}};
  if (!add_space_prefix) return replace;
  return {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}}, replace}}};
}

nlohmann::json spm_decoder(bool add_space_prefix) {
  nlohmann::json decoders = {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                             {{"type", "ByteFallback"}},
                             {{"type", "Fuse"}}};
  if (add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return {{"type", "Sequence"}, {"decoders", decoders}};
}

std::vector<std::pair<TokenId, TokenId>> spm_merges_from_scores(const std::vector<std::string>& tokens,
                                                                const std::vector<float>& scores) {
  std::unordered_map<std::string_view, TokenId> ids;
  ids.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) ids.emplace(tokens[i], static_cast<TokenId>(i));
  std::vector<TokenId> order(tokens.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](TokenId a, TokenId b) { return scores[a] > scores[b]; });
  std::vector<std::pair<TokenId, TokenId>> merges;
  std::vector<std::pair<TokenId, TokenId>> splits;
  for (TokenId id : order) {
    const std::string_view token = tokens[id];
    if (token.size() < 2) continue;
    splits.clear();
    for (size_t cut = utf8_char_len(static_cast<unsigned char>(token[0])); cut < token.size();
         cut += utf8_char_len(static_cast<unsigned char>(token[cut]))) {
      const auto left = ids.find(token.substr(0, cut));
      const auto right = ids.find(token.substr(cut));
      if (left != ids.end() && right != ids.end()) splits.emplace_back(left->second, right->second);
    }
    std::sort(splits.begin(), splits.end());
    merges.insert(merges.end(), splits.begin(), splits.end());
  }
  return merges;
}

std::string gguf_byte_token(unsigned byte) {
  static const char* const kHex = "0123456789ABCDEF";
  return std::string("<0x") + kHex[(byte >> 4) & 15] + kHex[byte & 15] + ">";
}

bool is_gguf_byte_token(std::string_view token) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  return token.size() == 6 && token.substr(0, 3) == "<0x" && hex(token[3]) && hex(token[4]) && token[5] == '>';
}

}  // namespace hearth::tokenizer
