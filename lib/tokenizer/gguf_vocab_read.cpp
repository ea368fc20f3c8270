// GGUF tokenizer metadata -> Tokenizer. See gguf_vocab.h; the reverse direction is in gguf_vocab.cpp.
//
// Builds the tokenizer.json and tokenizer_config.json that describe the same tokenizer and hands them to
// Tokenizer::from_json, so there is one tokenizer implementation; the vocabulary and merges go to the BPE model as
// tables rather than JSON (for a 128k vocabulary the JSON was ~70 MB of short-lived heap left between the
// tokenizer's own tables, which stayed in the process's RSS). "gpt2": the pre-tokenizer name picks the
// pipeline from the table (gguf_vocab_tables.h); control and user-defined tokens become added tokens.
// "llama": BPE with byte fallback whose merges are derived from the scores (spm_merges_from_scores), which
// gives llama.cpp's SentencePiece merging; with add_space_prefix the text between special tokens starts with
// "▁" as in llama.cpp.
#include <cmath>
#include <functional>
#include <memory>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/gguf_vocab_tables.h"

namespace hearth::tokenizer {

namespace {

using io::GgufFile;
using io::GgufType;
using io::GgufValue;

const char* const kModelKey = "tokenizer.ggml.model";
const char* const kTokensKey = "tokenizer.ggml.tokens";

[[noreturn]] void bad_key(const GgufFile& file, const std::string& key, const std::string& what,
                          const std::string& expected, const std::string& got) {
  throw FormatError(file.path().string() + ": metadata key '" + key + "': " + what + "; expected " + expected +
                    ", got " + got);
}

struct Vocab {
  std::vector<std::string> tokens;
  std::vector<GgufTokenType> types;
  std::vector<float> scores;
  std::unordered_map<std::string_view, TokenId> ids;  // views into tokens, which must not change once filled
};

// Reads an optional per-token array and checks it has one entry per token.
template <class T>
std::vector<T> per_token(const GgufFile& file, const char* key, size_t n, T fallback,
                         const std::function<T(const GgufValue&)>& convert) {
  const GgufValue* value = file.find(key);
  if (!value) return std::vector<T>(n, fallback);
  if (!value->is_array()) bad_key(file, key, "wrong type", "an array", std::string(io::gguf_type_name(value->type())));
  if (value->size() != n) {
    bad_key(file, key, "one entry per token", std::to_string(n) + " entries (as " + kTokensKey + ")",
            std::to_string(value->size()));
  }
  std::vector<T> out;
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) out.push_back(convert(value->item(i)));
  return out;
}

Vocab read_vocab(const GgufFile& file) {
  Vocab v;
  v.tokens = file.get_string_array(kTokensKey);
  const size_t n = v.tokens.size();
  if (n == 0) bad_key(file, kTokensKey, "empty vocabulary", "at least one token", "none");
  v.ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (v.tokens[i].empty()) v.tokens[i] = "[EMPTY_" + std::to_string(i) + "]";  // as llama.cpp loads it
    const auto [it, fresh] = v.ids.emplace(v.tokens[i], static_cast<TokenId>(i));
    if (!fresh) {
      bad_key(file, kTokensKey, "duplicate token", "distinct strings",
              "\"" + io::gguf_printable(v.tokens[i]) + "\" at ids " + std::to_string(it->second) + " and " +
                  std::to_string(i));
    }
  }
  const char* const types_key = "tokenizer.ggml.token_type";
  v.types = per_token<GgufTokenType>(file, types_key, n, GgufTokenType::kNormal, [&](const GgufValue& x) {
    const auto t = x.as_int();
    if (!t || *t < 0 || *t > static_cast<int64_t>(GgufTokenType::kByte)) {
      bad_key(file, types_key, "unknown token type", "0..6 (gguf-py TokenType)",
              t ? std::to_string(*t) : "a non-integer");
    }
    return static_cast<GgufTokenType>(*t);
  });
  const char* const scores_key = "tokenizer.ggml.scores";
  v.scores = per_token<float>(file, scores_key, n, 0.0f, [&](const GgufValue& x) {
    const auto f = x.as_float();
    const auto i = x.as_int();  // llama.cpp also reads i32 scores
    if (!f && !i)
      bad_key(file, scores_key, "wrong element type", "f32 (or i32)", std::string(io::gguf_type_name(x.type())));
    const double value = f ? *f : static_cast<double>(*i);
    if (!std::isfinite(value)) bad_key(file, scores_key, "score not finite", "a finite number", std::to_string(value));
    return static_cast<float>(value);
  });
  return v;
}

bool is_added(GgufTokenType t) {
  return t == GgufTokenType::kControl || t == GgufTokenType::kUserDefined || t == GgufTokenType::kUnknown;
}

nlohmann::json added_tokens_json(const Vocab& v) {
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    if (!is_added(v.types[i])) continue;
    added.push_back({{"id", i},
                     {"content", v.tokens[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", v.types[i] != GgufTokenType::kUserDefined}});
  }
  return added;
}

// A special token id: the key's value, else `fallback` (llama.cpp's default) when within the vocabulary.
std::optional<TokenId> special_id(const GgufFile& file, const std::string& key, std::optional<TokenId> fallback,
                                  size_t n) {
  if (!file.find(key)) {
    if (fallback && static_cast<size_t>(*fallback) < n) return fallback;
    return std::nullopt;
  }
  const uint64_t id = file.get_uint(key);
  if (id >= n) bad_key(file, key, "token id out of range", "an id below " + std::to_string(n), std::to_string(id));
  return static_cast<TokenId>(id);
}

bool flag(const GgufFile& file, const std::string& key, bool fallback) {
  return file.find(key) ? file.get_bool(key) : fallback;
}

// ---- "gpt2" ----

// A tokenizer.json whose model holds its options only, and the BPE model built from the tables.
struct BuiltJson {
  nlohmann::json json;
  std::unique_ptr<BpeModel> model;
};

BuiltJson gpt2_tokenizer(const GgufFile& file, const Vocab& v, const GgufPreTokenizer& pre) {
  std::vector<bool> in_vocab(v.tokens.size());
  for (size_t i = 0; i < v.tokens.size(); ++i) in_vocab[i] = !is_added(v.types[i]);
  const char* const merges_key = "tokenizer.ggml.merges";
  const GgufValue& lines = file.get(merges_key);
  if (!lines.is_array() || lines.element_type() != GgufType::kString)
    bad_key(file, merges_key, "wrong type", "an array of string",
            lines.is_array() ? "an array of " + std::string(io::gguf_type_name(lines.element_type()))
                             : std::string(io::gguf_type_name(lines.type())));
  std::vector<BpeMerge> merges;
  merges.reserve(lines.size());
  std::string joined;
  for (uint64_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines.string_item(i);
    const size_t space = line.size() > 1 ? line.find(' ', 1) : std::string::npos;  // as llama.cpp splits it
    const std::string where = std::string(merges_key) + "[" + std::to_string(i) + "]";
    if (space == std::string::npos) {
      bad_key(file, where, "bad merge", "two tokens separated by a space",
              "\"" + io::gguf_printable(line) + "\"");
    }
    const std::string_view left = line.substr(0, space), right = line.substr(space + 1);
    auto vocab_id = [&](std::string_view token, const char* what, const std::string& expected) {
      const auto it = v.ids.find(token);
      if (it == v.ids.end() || !in_vocab[it->second]) {
        bad_key(file, where, what, expected + std::string(kTokensKey),
                "\"" + io::gguf_printable(token) + "\"");
      }
      return it->second;
    };
    BpeMerge m{};
    m.left = vocab_id(left, "merge of a token not in the vocabulary", "tokens of ");
    m.right = vocab_id(right, "merge of a token not in the vocabulary", "tokens of ");
    joined.assign(left).append(right);
    m.result = vocab_id(joined, "merge result not in the vocabulary", "a token of ");
    merges.push_back(m);
  }
  nlohmann::json model = {{"type", "BPE"},     {"dropout", nullptr},     {"unk_token", nullptr},
                          {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", pre.ignore_merges}};
  const Where where{file.path().string() + " (tokenizer metadata)", "model"};
  auto bpe = std::make_unique<BpeModel>(model, v.tokens, in_vocab, merges, where);
  nlohmann::json json = {
      {"version", "1.0"},
      {"added_tokens", added_tokens_json(v)},
      {"normalizer", pre.normalizer},
      {"pre_tokenizer", pre.pre_tokenizer},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", std::move(model)}};
  return {std::move(json), std::move(bpe)};
}

const GgufPreTokenizer& gpt2_pre(const GgufFile& file) {
  const char* const key = "tokenizer.ggml.pre";
  if (!file.find(key)) {
    bad_key(file, key, "missing (llama.cpp would fall back to a generic regex)", "one of " + gguf_pre_tokenizer_names(),
            "none");
  }
  const std::string name = file.get_string(key);
  const GgufPreTokenizer* pre = gguf_pre_tokenizer_by_name(name);
  if (!pre)
    bad_key(file, key, "pre-tokenizer hearth does not know", "one of " + gguf_pre_tokenizer_names(),
            "\"" + name + "\"");
  return *pre;
}

// ---- "llama" ----

BuiltJson llama_tokenizer(const GgufFile& file, const Vocab& v, std::optional<TokenId> unk) {
  const char* const extra_ws_key = "tokenizer.ggml.remove_extra_whitespaces";
  if (flag(file, extra_ws_key, false)) {
    bad_key(file, extra_ws_key, "whitespace folding is not supported", "false or absent", "true");
  }
  const bool add_space_prefix = flag(file, "tokenizer.ggml.add_space_prefix", true);
  const std::vector<bool> in_vocab(v.tokens.size(), true);  // every token can be a merge's result
  std::vector<BpeMerge> merges;
  std::string joined;
  for (const auto& [a, b] : spm_merges_from_scores(v.tokens, v.scores)) {
    joined.assign(v.tokens[a]).append(v.tokens[b]);
    merges.push_back({a, b, v.ids.at(joined)});  // spm_merges_from_scores joins tokens into tokens only
  }
  nlohmann::json model = {
      {"type", "BPE"}, {"dropout", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false}};
  model["unk_token"] = unk ? nlohmann::json(v.tokens[*unk]) : nlohmann::json();
  const Where where{file.path().string() + " (tokenizer metadata)", "model"};
  auto bpe = std::make_unique<BpeModel>(model, v.tokens, in_vocab, merges, where);
  nlohmann::json json = {{"version", "1.0"},
                         {"added_tokens", added_tokens_json(v)},
                         {"normalizer", spm_normalizer(add_space_prefix)},
                         {"pre_tokenizer", nullptr},
                         {"post_processor", nullptr},
                         {"decoder", spm_decoder(add_space_prefix)},
                         {"model", std::move(model)}};
  return {std::move(json), std::move(bpe)};
}

// ---- tokenizer_config.json ----

nlohmann::json chat_template_json(const GgufFile& file) {
  const GgufValue* names = file.find("tokenizer.chat_templates");
  const GgufValue* fallback = file.find("tokenizer.chat_template");
  if (!names) return fallback ? nlohmann::json(file.get_string("tokenizer.chat_template")) : nlohmann::json();
  nlohmann::json list = nlohmann::json::array();
  if (fallback) list.push_back({{"name", "default"}, {"template", file.get_string("tokenizer.chat_template")}});
  for (const std::string& name : file.get_string_array("tokenizer.chat_templates")) {
    list.push_back({{"name", name}, {"template", file.get_string("tokenizer.chat_template." + name)}});
  }
  return list;
}

}  // namespace

Tokenizer tokenizer_from_gguf(const io::GgufFile& file) {
  const std::string model = file.get_string(kModelKey);
  if (model != "gpt2" && model != "llama") {
    bad_key(file, kModelKey, "unsupported tokenizer model",
            "\"gpt2\" (byte-level BPE) or \"llama\" (SentencePiece BPE)", "\"" + io::gguf_printable(model) + "\"");
  }
  const bool spm = model == "llama";
  const Vocab v = read_vocab(file);
  const size_t n = v.tokens.size();
  // llama.cpp's defaults when a key is absent (llama_vocab::impl::load).
  auto id_default = [&](TokenId id) { return spm ? std::optional<TokenId>(id) : std::nullopt; };
  const auto bos = special_id(file, "tokenizer.ggml.bos_token_id", id_default(1), n);
  const auto eos = special_id(file, "tokenizer.ggml.eos_token_id", id_default(2), n);
  const auto unk = special_id(file, "tokenizer.ggml.unknown_token_id", id_default(0), n);
  const auto pad = special_id(file, "tokenizer.ggml.padding_token_id", std::nullopt, n);
  const GgufPreTokenizer* pre = spm ? nullptr : &gpt2_pre(file);
  const bool add_bos = flag(file, "tokenizer.ggml.add_bos_token", spm || pre->add_bos);
  const bool add_eos = flag(file, "tokenizer.ggml.add_eos_token", false);
  if (add_bos && !bos) {
    bad_key(file, "tokenizer.ggml.add_bos_token", "BOS asked for but unknown", "tokenizer.ggml.bos_token_id", "none");
  }
  if (add_eos && !eos) {
    bad_key(file, "tokenizer.ggml.add_eos_token", "EOS asked for but unknown", "tokenizer.ggml.eos_token_id", "none");
  }
  nlohmann::json config = {{"add_bos_token", add_bos}, {"add_eos_token", add_eos}};
  if (bos) config["bos_token"] = v.tokens[*bos];
  if (eos) config["eos_token"] = v.tokens[*eos];
  if (unk) config["unk_token"] = v.tokens[*unk];
  if (pad) config["pad_token"] = v.tokens[*pad];
  const nlohmann::json chat_template = chat_template_json(file);
  if (!chat_template.is_null()) config["chat_template"] = chat_template;
  BuiltJson built = spm ? llama_tokenizer(file, v, unk) : gpt2_tokenizer(file, v, *pre);
  return Tokenizer::from_json(built.json, std::move(built.model), config,
                              file.path().string() + " (tokenizer metadata)");
}

}  // namespace hearth::tokenizer
