// Tokenizer -> GGUF tokenizer metadata. See gguf_vocab.h; the reverse direction is in gguf_vocab_read.cpp.
//
// What llama.cpp's converter does, from hearth's loaded tokenizer instead of transformers: byte-level BPE
// becomes "gpt2" (vocabulary strings as they are, merges as "a b"), SentencePiece-style BPE becomes "llama"
// with scores = -(rank of the last merge that makes the token), 0 for tokens no merge makes, which gives
// llama.cpp's score-ordered merging the tokenizer.json's merge order (checked here, not assumed).
#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <unordered_map>

#include "tokenizer/added_tokens.h"
#include "tokenizer/gguf_vocab_tables.h"
#include "tokenizer/tokenizer_json.h"

namespace hearth::tokenizer {

namespace {

using io::GgufKv;
using io::GgufValue;

const Where kRoot{"tokenizer.json", ""};
// llama.cpp finds the end-of-turn token by its text; these are the ones hearth writes as eot_token_id.
const char* const kEndOfTurnTokens[] = {"<|eot_id|>",    "<|im_end|>",      "<|end|>",
                                        "<end_of_turn>", "<|end_of_turn|>", "<EOT>"};

[[noreturn]] void cannot_express(const std::string& component, const std::string& what, const std::string& expected,
                                 const std::string& got) {
  throw_format(kRoot / component, "cannot be written as GGUF tokenizer metadata: " + what, expected, got);
}

// The tokenizer's vocabulary as GGUF lists it: one string and one type per id.
struct Vocab {
  std::vector<std::string> tokens;
  std::vector<int32_t> types;
  std::unordered_map<std::string, TokenId> ids;
};

std::map<TokenId, AddedToken> added_tokens(const Tokenizer& tok) {
  std::map<TokenId, AddedToken> added;
  const nlohmann::json& list = tok.definition().value("added_tokens", nlohmann::json::array());
  for (size_t i = 0; i < list.size(); ++i) {
    const Where where = (kRoot / "added_tokens").at(i);
    AddedToken t = added_token_from_json(list[i], where);
    if (t.lstrip || t.rstrip || t.single_word) {
      cannot_express(where.path, "llama.cpp matches added tokens exactly", "lstrip, rstrip, single_word false",
                     "\"" + t.content + "\" with one of them set");
    }
    added[t.id] = std::move(t);
  }
  return added;
}

std::optional<TokenId> model_unk_id(const Tokenizer& tok) {
  const std::string unk = json_string(tok.definition()["model"], "unk_token", kRoot / "model");
  return unk.empty() ? std::nullopt : tok.token_to_id(unk);
}

Vocab vocab_of(const Tokenizer& tok, bool spm) {
  const auto added = added_tokens(tok);
  const auto unk = model_unk_id(tok);
  Vocab v;
  const size_t n = tok.vocab_size();
  v.tokens.resize(n);
  v.types.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<TokenId>(i);
    const auto text = tok.id_to_token(id);
    GgufTokenType type = GgufTokenType::kNormal;
    if (!text) {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";  // a hole in the ids, as llama.cpp's converter fills it
      type = GgufTokenType::kUnused;
    } else {
      v.tokens[i] = *text;
      const auto a = added.find(id);
      if (a != added.end()) {
        type = id == unk           ? GgufTokenType::kUnknown
               : a->second.special ? GgufTokenType::kControl
                                   : GgufTokenType::kUserDefined;
      } else if (spm && is_gguf_byte_token(*text)) {
        type = GgufTokenType::kByte;
      } else if (spm && id == unk) {
        type = GgufTokenType::kUnknown;
      }
    }
    v.types[i] = static_cast<int32_t>(type);
    const auto [it, fresh] = v.ids.emplace(v.tokens[i], id);
    if (!fresh) {
      cannot_express("model.vocab", "llama.cpp needs every token string once", "distinct tokens",
                     "\"" + v.tokens[i] + "\" at ids " + std::to_string(it->second) + " and " + std::to_string(i));
    }
  }
  return v;
}

void check_plain_bpe(const nlohmann::json& model, bool byte_fallback) {
  const Where where = kRoot / "model";
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const std::string value = json_string(model, key, where);
    if (!value.empty())
      cannot_express(std::string("model.") + key, "not a GGUF notion", "null or \"\"", "\"" + value + "\"");
  }
  if (json_bool(model, "byte_fallback", where, false) != byte_fallback) {
    cannot_express("model.byte_fallback",
                   byte_fallback ? "a SentencePiece-style (\"llama\") vocabulary falls back to bytes"
                                 : "a byte-level (\"gpt2\") vocabulary has no byte fallback",
                   byte_fallback ? "true" : "false", byte_fallback ? "false" : "true");
  }
}

TokenId merge_result(const Vocab& v, std::pair<TokenId, TokenId> m);

// ---- "gpt2" ----

void add_gpt2_model(const Tokenizer& tok, const Vocab& v, const GgufPreTokenizer& pre, std::vector<GgufKv>& kv) {
  check_plain_bpe(tok.definition()["model"], false);
  std::vector<std::string> merges;
  for (const auto& [a, b] : tok.merges()) {
    const std::string& left = v.tokens[a];
    const std::string& right = v.tokens[b];
    if (left.find(' ') != std::string::npos || right.find(' ') != std::string::npos) {
      cannot_express("model.merges", "GGUF merges are \"a b\" strings", "tokens without spaces",
                     "[\"" + left + "\", \"" + right + "\"]");
    }
    merge_result(v, {a, b});  // throws when the merged token has no id of its own
    merges.push_back(left + " " + right);
  }
  kv.push_back({"tokenizer.ggml.model", GgufValue::string("gpt2")});
  kv.push_back({"tokenizer.ggml.pre", GgufValue::string(pre.name)});
  kv.push_back({"tokenizer.ggml.tokens", GgufValue::array_of(v.tokens)});
  kv.push_back({"tokenizer.ggml.token_type", GgufValue::array_of(v.types)});
  kv.push_back({"tokenizer.ggml.merges", GgufValue::array_of(merges)});
}

// ---- "llama" ----

// add_space_prefix of a SentencePiece-style pipeline, or a FormatError naming the component that differs.
bool spm_add_space_prefix(const nlohmann::json& def) {
  const nlohmann::json normalizer = def.value("normalizer", nlohmann::json());
  const bool prefix = normalizer == spm_normalizer(true);
  if (!prefix && normalizer != spm_normalizer(false)) {
    cannot_express("normalizer", "llama.cpp's SentencePiece tokenizer only maps \" \" to \"\u2581\"",
                   spm_normalizer(true).dump() + " (add_space_prefix) or " + spm_normalizer(false).dump(),
                   json_brief(normalizer));
  }
  const nlohmann::json pre = def.value("pre_tokenizer", nlohmann::json());
  if (!pre.is_null()) {
    cannot_express("pre_tokenizer", "llama.cpp's SentencePiece tokenizer does not pre-tokenize", "null",
                   json_brief(pre));
  }
  const nlohmann::json decoder = def.value("decoder", nlohmann::json());
  if (decoder != spm_decoder(prefix)) {
    cannot_express("decoder", "llama.cpp decodes \"\u2581\" to \" \" and joins byte tokens", spm_decoder(prefix).dump(),
                   json_brief(decoder));
  }
  return prefix;
}

// Token id of a merge's result in the GGUF vocabulary. The loader checked that the result is in model.vocab, but
// a tokenizer.json may give one id to two strings (HF keeps one for decoding, as hearth does); GGUF lists one
// string per id, so the other string, and every merge that makes it, cannot be written.
TokenId merge_result(const Vocab& v, std::pair<TokenId, TokenId> m) {
  const std::string made = v.tokens[m.first] + v.tokens[m.second];
  const auto it = v.ids.find(made);
  if (it == v.ids.end()) {
    cannot_express("model.vocab", "llama.cpp lists one token string per id", "one id per token",
                   "\"" + made + "\" (made by a merge) sharing its id with another token");
  }
  return it->second;
}

// Checks that llama.cpp, merging by `scores`, applies exactly the tokenizer's merges, each token's merges in
// one stretch in the same order of tokens (the order of one token's merges among themselves only decides
// which of two same-token pairs in one word merges first, which gives the same ids).
void check_spm_merges(const Vocab& v, const std::vector<std::pair<TokenId, TokenId>>& merges,
                      const std::vector<float>& scores) {
  const auto implied = spm_merges_from_scores(v.tokens, scores);
  auto sorted_merges = merges, sorted_implied = implied;
  std::sort(sorted_merges.begin(), sorted_merges.end());
  std::sort(sorted_implied.begin(), sorted_implied.end());
  if (sorted_merges != sorted_implied) {
    std::vector<std::pair<TokenId, TokenId>> extra;
    std::set_difference(sorted_implied.begin(), sorted_implied.end(), sorted_merges.begin(), sorted_merges.end(),
                        std::back_inserter(extra));
    const std::string got = extra.empty() ? "a merge of tokens that no split into two tokens makes"
                                          : "\"" + v.tokens[extra[0].first] + "\" + \"" + v.tokens[extra[0].second] +
                                                "\" merges by score but is not a merge";
    cannot_express("model.merges", "llama.cpp merges every pair of tokens that forms a token",
                   "a merge for every split of a token into two tokens", got);
  }
  auto groups = [&](const std::vector<std::pair<TokenId, TokenId>>& list) {
    std::vector<TokenId> out;
    for (const auto& m : list) {
      const TokenId r = merge_result(v, m);
      if (out.empty() || out.back() != r) out.push_back(r);
    }
    return out;
  };
  const auto want = groups(merges), got = groups(implied);
  if (want != got) {
    size_t i = 0;
    while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
    cannot_express("model.merges", "scores order merges by the token they make", "the merges of each token together",
                   "\"" + v.tokens[want[std::min(i, want.size() - 1)]] + "\" made by merges apart from each other");
  }
}

void add_llama_model(const Tokenizer& tok, const Vocab& v, std::vector<GgufKv>& kv) {
  const nlohmann::json& def = tok.definition();
  check_plain_bpe(def["model"], true);
  if (json_bool(def["model"], "ignore_merges", kRoot / "model", false)) {
    cannot_express("model.ignore_merges", "llama.cpp's SentencePiece tokenizer always merges", "false", "true");
  }
  const bool add_space_prefix = spm_add_space_prefix(def);
  const auto merges = tok.merges();
  std::vector<float> scores(v.tokens.size(), 0.0f);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    scores[merge_result(v, merges[rank])] = -static_cast<float>(rank);
  }
  check_spm_merges(v, merges, scores);
  kv.push_back({"tokenizer.ggml.model", GgufValue::string("llama")});
  kv.push_back({"tokenizer.ggml.tokens", GgufValue::array_of(v.tokens)});
  kv.push_back({"tokenizer.ggml.scores", GgufValue::array_of(scores)});
  kv.push_back({"tokenizer.ggml.token_type", GgufValue::array_of(v.types)});
  if (!add_space_prefix) kv.push_back({"tokenizer.ggml.add_space_prefix", GgufValue::boolean(false)});
}

// ---- special tokens, flags, chat template ----

// {add BOS, add EOS} of the post-processor; FormatError when it adds anything else.
std::pair<bool, bool> bos_eos_flags(const Tokenizer& tok) {
  EncodeOptions plain;
  plain.add_special_tokens = false;
  const auto inner = tok.encode("a", plain);
  const auto full = tok.encode("a");
  auto at = std::search(full.begin(), full.end(), inner.begin(), inner.end());
  if (at == full.end() && !inner.empty()) cannot_express("post_processor", "it changes the text's ids", "", "");
  const std::vector<TokenId> prefix(full.begin(), at), suffix(at + inner.size(), full.end());
  auto ids_text = [](const std::vector<TokenId>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
    return s + "]";
  };
  const auto bos = tok.bos_id(), eos = tok.eos_id();
  if (!(prefix.empty() || (bos && prefix == std::vector<TokenId>{*bos}))) {
    cannot_express("post_processor", "GGUF can only ask for BOS first", "nothing or the bos_token before the text",
                   ids_text(prefix));
  }
  if (!(suffix.empty() || (eos && suffix == std::vector<TokenId>{*eos}))) {
    cannot_express("post_processor", "GGUF can only ask for EOS last", "nothing or the eos_token after the text",
                   ids_text(suffix));
  }
  return {!prefix.empty(), !suffix.empty()};
}

void add_special_ids(const Tokenizer& tok, std::vector<GgufKv>& kv) {
  auto put = [&](const char* key, std::optional<TokenId> id) {
    if (id) kv.push_back({key, GgufValue::u32(static_cast<uint32_t>(*id))});
  };
  put("tokenizer.ggml.bos_token_id", tok.bos_id());
  put("tokenizer.ggml.eos_token_id", tok.eos_id());
  std::optional<TokenId> unk;
  const nlohmann::json& config = tok.config();
  if (config.is_object() && config.contains("unk_token")) {
    const auto& u = config["unk_token"];
    if (u.is_string()) unk = tok.token_to_id(u.get<std::string>());
    else if (u.is_object() && u.contains("content") && u["content"].is_string())
      unk = tok.token_to_id(u["content"].get<std::string>());
  }
  put("tokenizer.ggml.unknown_token_id", unk ? unk : model_unk_id(tok));
  put("tokenizer.ggml.padding_token_id", tok.pad_id());
  for (const char* text : kEndOfTurnTokens) {
    if (const auto id = tok.token_to_id(text)) {
      put("tokenizer.ggml.eot_token_id", id);
      break;
    }
  }
  const auto [add_bos, add_eos] = bos_eos_flags(tok);
  kv.push_back({"tokenizer.ggml.add_bos_token", GgufValue::boolean(add_bos)});
  kv.push_back({"tokenizer.ggml.add_eos_token", GgufValue::boolean(add_eos)});
}

// tokenizer_config.json's chat_template: a string, or named templates as gguf-py's add_chat_template
// writes them (default -> tokenizer.chat_template, others -> tokenizer.chat_template.<name> + the list of
// names in tokenizer.chat_templates).
void add_chat_template(const nlohmann::json& config, std::vector<GgufKv>& kv) {
  if (!config.is_object() || !config.contains("chat_template") || config["chat_template"].is_null()) return;
  const nlohmann::json& t = config["chat_template"];
  const Where where{"tokenizer_config.json", "chat_template"};
  if (t.is_string()) {
    kv.push_back({"tokenizer.chat_template", GgufValue::string(t.get<std::string>())});
    return;
  }
  if (!t.is_array()) throw_format(where, "wrong type", "a string or a list of {\"name\", \"template\"}", json_brief(t));
  std::optional<std::string> fallback;
  std::vector<std::string> names;
  std::vector<GgufKv> named;
  for (size_t i = 0; i < t.size(); ++i) {
    const std::string name = json_string(t[i], "name", where.at(i));
    const std::string text = json_string(t[i], "template", where.at(i));
    if (name.empty()) throw_format(where.at(i) / "name", "missing template name", "a name", json_brief(t[i]));
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
        throw_format(where.at(i) / "name", "GGUF template names are letters, digits and _", "[A-Za-z0-9_]+",
                     "\"" + name + "\"");
      }
    }
    if (name == "default") {
      fallback = text;
    } else {
      names.push_back(name);
      named.push_back({"tokenizer.chat_template." + name, GgufValue::string(text)});
    }
  }
  if (fallback) kv.push_back({"tokenizer.chat_template", GgufValue::string(*fallback)});
  kv.insert(kv.end(), named.begin(), named.end());
  if (!names.empty()) kv.push_back({"tokenizer.chat_templates", GgufValue::array_of(names)});
}

}  // namespace

std::vector<io::GgufKv> tokenizer_gguf_metadata(const Tokenizer& tok) {
  const nlohmann::json& def = tok.definition();
  const nlohmann::json& model = def["model"];
  const nlohmann::json normalizer = def.value("normalizer", nlohmann::json());
  const nlohmann::json pre_tokenizer = def.value("pre_tokenizer", nlohmann::json());
  std::vector<GgufKv> kv;
  const bool byte_level = pre_tokenizer.dump().find("\"ByteLevel\"") != std::string::npos;
  if (byte_level) {
    const auto* pre = gguf_pre_tokenizer_matching(normalizer, pre_tokenizer,
                                                  json_bool(model, "ignore_merges", kRoot / "model", false));
    if (!pre) {
      cannot_express(
          "pre_tokenizer", "llama.cpp knows byte-level pre-tokenizers by name",
          "the pipeline (normalizer, pre_tokenizer, model.ignore_merges) of one of " + gguf_pre_tokenizer_names(),
          json_brief(pre_tokenizer));
    }
    const std::string decoder = json_type(def.value("decoder", nlohmann::json::object({{"type", ""}})),
                                          kRoot / "decoder");
    if (decoder != "ByteLevel")
      cannot_express("decoder.type", "llama.cpp decodes byte-level", "\"ByteLevel\"", "\"" + decoder + "\"");
    add_gpt2_model(tok, vocab_of(tok, false), *pre, kv);
  } else {
    add_llama_model(tok, vocab_of(tok, true), kv);
  }
  add_special_ids(tok, kv);
  add_chat_template(tok.config(), kv);
  return kv;
}

}  // namespace hearth::tokenizer
