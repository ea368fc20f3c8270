// Tokenizer: loads tokenizer.json (+ tokenizer_config.json, special_tokens_map.json) and runs the HF
// pipeline: added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor; decode through the
// decoder. See tokenizer.h for the contract and docs/tokenizers.md for what is supported.
//
// The "truncation" and "padding" sections of tokenizer.json are ignored, as transformers' tokenizer(text)
// does unless asked to truncate or pad.
#include "tokenizer/tokenizer.h"

#include <malloc.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/signals.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

namespace {

// Reads and parses a JSON file; IoError when unreadable, FormatError when not JSON.
nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path.string() + ": cannot open for reading; expected a readable file, got none");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw IoError(path.string() + ": read failed");
  try {
    return io::json_parse_bounded(buffer.str());
  } catch (const io::JsonTooDeep& e) {
    throw FormatError(path.string() + ": not valid JSON (" + e.what() + ")");
  } catch (const nlohmann::json::exception& e) {  // syntax errors, and numbers out of range such as 1e400
    throw FormatError(path.string() + ": not valid JSON (" + e.what() + ")");
  }
}

// A token named in a config: "<s>", {"content": "<s>", ...} or null.
std::optional<std::string> config_token(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  return std::nullopt;
}

// True for the transformers classes that rebuild their post-processor from add_bos_token/add_eos_token.
bool uses_bos_eos_flags(const nlohmann::json& config) {
  if (!config.is_object() || !config.contains("tokenizer_class") || !config["tokenizer_class"].is_string()) {
    return false;
  }
  std::string cls = config["tokenizer_class"].get<std::string>();
  if (cls.size() > 4 && cls.compare(cls.size() - 4, 4, "Fast") == 0) cls.resize(cls.size() - 4);
  return cls == "LlamaTokenizer" || cls == "CodeLlamaTokenizer" || cls == "GemmaTokenizer";
}

// Plain spans are byte offsets into the text as given; sanitizing must not move them.
void plain_spans_check(const ByteSpans& spans, std::string_view text, const std::string& clean) {
  size_t end = 0;
  for (const auto& [b, e] : spans) {
    if (b < end || e < b || e > text.size())
      throw Error("encode: plain_spans; expected sorted, disjoint byte ranges within the " +
                  std::to_string(text.size()) + "-byte text, got [" + std::to_string(b) + ", " + std::to_string(e) +
                  ")");
    end = e;
  }
  if (clean != text) throw Error("encode: plain_spans need valid UTF-8 text; got invalid bytes");
}

}  // namespace

struct Tokenizer::Impl {
  std::string origin;
  nlohmann::json config;
  nlohmann::json definition;  // tokenizer.json without model.vocab and model.merges
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<AddedVocabulary> added;
  PostProcessor post_processor;
  std::unique_ptr<Decoder> decoder;
  std::optional<TokenId> bos, eos, pad;
  size_t vocab_size = 0;
  std::string family;
  // token_bytes(): the anchor token decoded before a token (its string; empty when there is none) and the bytes
  // it decodes to alone, computed once.
  mutable std::once_flag anchor_once;
  mutable std::string anchor, anchor_bytes;

  // `built`: the BPE model when already built from its tables; else it is read from tj's model.
  Impl(const nlohmann::json& tj, const nlohmann::json& config_json, const nlohmann::json& special_map,
       std::string origin_name, std::unique_ptr<BpeModel> built = nullptr);
  void load_model(const nlohmann::json& tj, const Where& root, std::unique_ptr<BpeModel> built);
  void load_added_tokens(const nlohmann::json& tj, const Where& root);
  void load_special_ids(const nlohmann::json& special_map);
  void load_post_processor(const nlohmann::json& tj, const Where& root);
  std::optional<TokenId> lookup(std::string_view token) const;
  std::optional<std::string_view> token_of(TokenId id) const;
};

Tokenizer::Impl::Impl(const nlohmann::json& tj, const nlohmann::json& config_json, const nlohmann::json& special_map,
                      std::string origin_name, std::unique_ptr<BpeModel> built)
    : origin(std::move(origin_name)), config(config_json) {
  const Where root{origin, ""};
  if (!tj.is_object()) throw_format(root, "not a tokenizer.json object", "a JSON object", json_brief(tj));
  load_model(tj, root, std::move(built));
  for (const auto& [key, value] : tj.items()) {
    if (key != "model") definition[key] = value;
  }
  for (const auto& [key, value] : tj["model"].items()) {
    if (key != "vocab" && key != "merges") definition["model"][key] = value;
  }
  normalizer = normalizer_from_json(tj.value("normalizer", nlohmann::json()), root / "normalizer");
  pre_tokenizer = pre_tokenizer_from_json(tj.value("pre_tokenizer", nlohmann::json()), root / "pre_tokenizer");
  decoder = decoder_from_json(tj.value("decoder", nlohmann::json()), root / "decoder");
  load_added_tokens(tj, root);
  load_special_ids(special_map);
  load_post_processor(tj, root);
  const std::string pre = tj.value("pre_tokenizer", nlohmann::json()).dump();
  family = pre.find("\"ByteLevel\"") != std::string::npos ? "byte-level BPE"
           : tj["model"].value("byte_fallback", false)    ? "SentencePiece-style BPE"
                                                          : "BPE";
}

void Tokenizer::Impl::load_model(const nlohmann::json& tj, const Where& root, std::unique_ptr<BpeModel> built) {
  const auto& m = json_member(tj, "model", root);
  const std::string type = json_type(m, root / "model");
  if (type != "BPE") {
    throw_format(root / "model" / "type", "unsupported model", "\"BPE\"", "\"" + type + "\"");
  }
  model = built ? std::move(built) : std::make_unique<BpeModel>(m, root / "model");
  vocab_size = model->size();
}

void Tokenizer::Impl::load_added_tokens(const nlohmann::json& tj, const Where& root) {
  std::vector<AddedToken> tokens;
  const auto it = tj.find("added_tokens");
  if (it != tj.end() && !it->is_null()) {
    if (!it->is_array()) throw_format(root / "added_tokens", "wrong type", "an array", json_brief(*it));
    for (size_t i = 0; i < it->size(); ++i) {
      tokens.push_back(added_token_from_json((*it)[i], (root / "added_tokens").at(i)));
      vocab_size = std::max(vocab_size, static_cast<size_t>(tokens.back().id) + 1);
    }
  }
  added = std::make_unique<AddedVocabulary>(std::move(tokens), normalizer.get());
}

void Tokenizer::Impl::load_special_ids(const nlohmann::json& special_map) {
  auto find = [&](const char* key) -> std::optional<TokenId> {
    const nlohmann::json* source = nullptr;
    if (config.is_object() && config.contains(key)) source = &config[key];
    else if (special_map.is_object() && special_map.contains(key)) source = &special_map[key];
    if (!source) return std::nullopt;
    const auto token = config_token(*source);
    return token ? lookup(*token) : std::nullopt;
  };
  bos = find("bos_token");
  eos = find("eos_token");
  pad = find("pad_token");
}

void Tokenizer::Impl::load_post_processor(const nlohmann::json& tj, const Where& root) {
  const nlohmann::json pp = tj.value("post_processor", nlohmann::json());
  const Where config_where{origin + " (tokenizer_config.json)", ""};
  auto flag = [&](const char* key, bool fallback) {
    return json_bool(config.is_object() ? config : nlohmann::json::object(), key, config_where, fallback);
  };
  if (uses_bos_eos_flags(config)) {
    post_processor = post_processor_from_flags(bos, flag("add_bos_token", true), eos, flag("add_eos_token", false),
                                               config_where);
  } else if (!pp.is_null()) {
    post_processor = post_processor_from_json(pp, root / "post_processor");
  } else {
    post_processor = post_processor_from_flags(bos, flag("add_bos_token", false), eos, flag("add_eos_token", false),
                                               config_where);
  }
  // A post-processor's ids come from its own JSON (TemplateProcessing's special_tokens, Bert/Roberta cls/sep),
  // not from the vocabulary: each must be a token, or encode() would hand out ids beyond vocab_size(), which
  // the model's vocab_check does not see and no embedding row has.
  for (const auto* ids : {&post_processor.prefix, &post_processor.suffix})
    for (TokenId id : *ids)
      if (!token_of(id))
        throw_format(root / "post_processor", "adds an id that is no token", "ids of model.vocab or added_tokens",
                     std::to_string(id));
}

std::optional<TokenId> Tokenizer::Impl::lookup(std::string_view token) const {
  if (const AddedToken* t = added->by_content(token)) return t->id;
  return model->token_to_id(token);
}

std::optional<std::string_view> Tokenizer::Impl::token_of(TokenId id) const {
  if (const AddedToken* t = added->by_id(id)) return std::string_view(t->content);
  return model->id_to_token(id);
}

// ---- Tokenizer ----

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::filesystem::path& dir) {
  auto build = [&]() -> Tokenizer {
    if (dir.extension() == ".gguf" && !std::filesystem::is_directory(dir))
      return tokenizer_from_gguf(*io::GgufFile::open(dir));
    const auto path = dir / "tokenizer.json";
    if (!std::filesystem::is_regular_file(path)) {
      throw IoError(path.string() + ": tokenizer file missing; expected a tokenizer.json in " + dir.string() +
                    ", got none");
    }
    const nlohmann::json tj = read_json_file(path);
    nlohmann::json config, special_map;
    if (std::filesystem::is_regular_file(dir / "tokenizer_config.json")) {
      config = read_json_file(dir / "tokenizer_config.json");
    }
    if (std::filesystem::is_regular_file(dir / "special_tokens_map.json")) {
      special_map = read_json_file(dir / "special_tokens_map.json");
    }
    return Tokenizer(std::make_unique<Impl>(tj, config, special_map, path.string()));
  };
  Tokenizer t = build();
  // A tokenizer.json is parsed into a JSON document of the vocabulary and merges (~150 MB of small allocations for a
  // 128k vocabulary, all freed by now), a GGUF's metadata into its string arrays: give those pages back, or they stay
  // in the process's RSS beside the weights.
  malloc_trim(0);
  return t;
}

Tokenizer Tokenizer::from_json(const nlohmann::json& tokenizer_json, const nlohmann::json& config,
                               const std::string& origin) {
  return Tokenizer(std::make_unique<Impl>(tokenizer_json, config, nlohmann::json(), origin));
}

Tokenizer Tokenizer::from_json(const nlohmann::json& tokenizer_json, std::unique_ptr<BpeModel> model,
                               const nlohmann::json& config, const std::string& origin) {
  if (!model) throw Error("Tokenizer::from_json: no BPE model given");
  return Tokenizer(std::make_unique<Impl>(tokenizer_json, config, nlohmann::json(), origin, std::move(model)));
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  return encode(text, options, {});
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, const EncodeOptions& options,
                                       const ByteSpans& plain_spans) const {
  const Impl& im = *impl_;
  const std::string clean = utf8_sanitize(text);
  if (!plain_spans.empty()) plain_spans_check(plain_spans, text, clean);
  std::vector<TokenId> ids;
  ids.reserve(clean.size() / 3 + 4);
  std::vector<std::string> pieces;
  for (Segment& seg : im.added->split_and_normalize(clean, options.parse_special, plain_spans)) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    pieces.clear();
    pieces.push_back(std::move(seg.text));
    if (im.pre_tokenizer) im.pre_tokenizer->split(pieces, seg.at_input_start);
    for (size_t i = 0; i < pieces.size(); ++i) {
      if (i % 1024 == 1023) interrupt_point();  // a long text in an interruptible scope (core/signals.h)
      im.model->tokenize(pieces[i], ids);
    }
  }
  if (options.add_special_tokens) im.post_processor.apply(ids);
  return ids;
}

namespace {
// Token strings -> text through `decoder` (joined with spaces without one, as HF); `raw`: bytes kept as they are
// (Decoder::decode_chain_bytes).
std::string decode_strings(const Decoder* decoder, std::vector<std::string> tokens, bool raw) {
  std::string text;
  if (!decoder) {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
    return text;
  }
  raw ? decoder->decode_chain_bytes(tokens) : decoder->decode_chain(tokens);
  for (const auto& t : tokens) text += t;
  return text;
}
}  // namespace

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    const auto token = im.token_of(id);
    if (!token) {
      throw FormatError(im.origin + ": decode: unknown token id; expected 0.." + std::to_string(im.vocab_size - 1) +
                        ", got " + std::to_string(id));
    }
    if (skip_special_tokens && is_special(id)) continue;
    tokens.emplace_back(*token);
  }
  return decode_strings(im.decoder.get(), std::move(tokens), false);
}

std::optional<std::string> Tokenizer::token_bytes(TokenId id) const {
  const Impl& im = *impl_;
  // A token's bytes mid-text: decode it after an anchor token ("a") and drop the anchor's bytes, so that
  // first-token rules (Metaspace's dropped space, Strip) apply to the anchor, not to the token.
  std::call_once(im.anchor_once, [&] {
    const std::vector<TokenId> a = encode("a", EncodeOptions{false, false});
    if (const auto t = a.size() == 1 ? im.token_of(a[0]) : std::nullopt) {
      im.anchor = std::string(*t);
      im.anchor_bytes = decode_strings(im.decoder.get(), {im.anchor}, true);
    }
  });
  const auto token = im.token_of(id);
  if (!token || is_special(id)) return std::nullopt;
  if (im.anchor.empty()) return decode_strings(im.decoder.get(), {std::string(*token)}, true);
  std::string both = decode_strings(im.decoder.get(), {im.anchor, std::string(*token)}, true);
  if (both.compare(0, im.anchor_bytes.size(), im.anchor_bytes) != 0) return std::nullopt;
  return both.substr(im.anchor_bytes.size());
}

std::vector<std::optional<std::string>> Tokenizer::token_bytes_all() const {
  std::vector<std::optional<std::string>> out(impl_->vocab_size);
  for (size_t id = 0; id < out.size(); ++id) out[id] = token_bytes(static_cast<TokenId>(id));
  return out;
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  const auto token = impl_->token_of(id);
  if (!token) return std::nullopt;
  return std::string(*token);
}

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const { return impl_->lookup(token); }

bool Tokenizer::is_special(TokenId id) const {
  const AddedToken* t = impl_->added->by_id(id);
  return t && t->special;
}

std::vector<std::string> Tokenizer::special_tokens() const {
  std::vector<std::string> out;
  for (const AddedToken& t : impl_->added->tokens())
    if (t.special) out.push_back(t.content);
  return out;
}

std::optional<TokenId> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<TokenId> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<TokenId> Tokenizer::pad_id() const { return impl_->pad; }
const nlohmann::json& Tokenizer::config() const { return impl_->config; }
const nlohmann::json& Tokenizer::definition() const { return impl_->definition; }
std::vector<std::pair<TokenId, TokenId>> Tokenizer::merges() const { return impl_->model->merge_pairs(); }

std::string Tokenizer::summary() const {
  const Impl& im = *impl_;
  auto name = [&](std::optional<TokenId> id) {
    if (!id) return std::string("none");
    const auto t = im.token_of(*id);
    return (t ? std::string(*t) : std::string("?")) + " (" + std::to_string(*id) + ")";
  };
  return im.family + ", vocab " + std::to_string(im.vocab_size) + ", " + std::to_string(im.model->merge_count()) +
         " merges, " + std::to_string(im.added->tokens().size()) + " added tokens, bos " + name(im.bos) + ", eos " +
         name(im.eos) + ", pad " + name(im.pad);
}

}  // namespace hearth::tokenizer
