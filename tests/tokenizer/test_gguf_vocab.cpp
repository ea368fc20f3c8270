// The tokenizer in GGUF metadata (tokenizer/gguf_vocab.h), both directions.
//
// References, none of them hearth's own output: the kq256 GGUF files, whose tokenizer metadata llama.cpp's
// tooling wrote from stories260K's vocabulary; the Hugging Face tokenizers (stories260K, GPT-2, Llama 3, Qwen3)
// with llama.cpp's published HF-tokenizers vectors and the transformers.js goldens; and llama.cpp's
// SentencePiece merging, written out plainly below (spm_reference) from its description. Token ids are
// compared exactly.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/prompt.h"
#include "core/error.h"
#include "io/gguf.h"
#include "test_paths.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace fs = std::filesystem;
namespace io = hearth::io;
namespace tok = hearth::tokenizer;
using Catch::Matchers::Contains;
using tok::TokenId;
using tok::Tokenizer;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A folder for the files these tests write, removed at exit.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("hearth_test_gguf_vocab_" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
const fs::path& temp_dir() {
  static TempDir dir;
  return dir.path;
}

std::shared_ptr<io::GgufFile> kq256_file() {
  return io::GgufFile::open(hearth::test::fixtures_dir() / "kq256" / "model-q8_0.gguf");
}

// Writes `metadata` as a GGUF file without tensors and opens it.
std::shared_ptr<io::GgufFile> write_gguf(const std::vector<io::GgufKv>& metadata, const std::string& name) {
  const fs::path path = temp_dir() / (name + ".gguf");
  io::gguf_write(path, metadata, {});
  return io::GgufFile::open(path);
}

// tokenizer -> metadata -> file -> tokenizer.
Tokenizer round_trip(const Tokenizer& t, const std::string& name) {
  auto kv = tok::tokenizer_gguf_metadata(t);
  kv.insert(kv.begin(), {"general.architecture", io::GgufValue::string("llama")});
  return tok::tokenizer_from_gguf(*write_gguf(kv, name));
}

const io::GgufValue* find_kv(const std::vector<io::GgufKv>& kv, const std::string& key) {
  for (const auto& e : kv) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

// llama.cpp's test strings (tests/fixtures/tokenizer-tests/llamacpp/*.inp): every string is followed by
// "\n__ggml_vocab_test__\n". `ids` from the matching .out (HF tokenizers, add_special_tokens=False).
struct Vector {
  std::string text;
  std::vector<TokenId> ids;
};
std::vector<Vector> llamacpp_vectors(const std::string& name) {
  const auto dir = hearth::test::fixtures_dir() / "tokenizer-tests" / "llamacpp";
  const std::string inp = read_file(dir / ("ggml-vocab-" + name + ".gguf.inp"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Vector> vectors;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(sep, pos);
    REQUIRE(end != std::string::npos);
    vectors.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(read_file(dir / ("ggml-vocab-" + name + ".gguf.out")));
  std::string line;
  for (size_t i = 0; std::getline(lines, line); ++i) {
    REQUIRE(i < vectors.size());
    std::istringstream ids(line);
    for (TokenId id; ids >> id;) vectors[i].ids.push_back(id);
  }
  return vectors;
}

nlohmann::json golden(const std::string& name) {
  return nlohmann::json::parse(read_file(hearth::test::golden_dir() / "tokenizer" / (name + ".json")));
}

// Every test string: the goldens' texts and llama.cpp's vectors for all vocabularies, plus special tokens of
// the four vocabularies written as text.
const std::vector<std::string>& all_strings() {
  static const std::vector<std::string> strings = [] {
    std::vector<std::string> out;
    for (const char* g : {"stories260K", "llama3", "qwen3"}) {
      const nlohmann::json cases = golden(g)["cases"];  // a copy: golden() returns a temporary
      for (const auto& c : cases) out.push_back(c["text"].get<std::string>());
    }
    for (const char* v : {"gpt-2", "llama-bpe", "qwen2", "llama-spm", "falcon", "deepseek-llm", "deepseek-coder"}) {
      for (const auto& vec : llamacpp_vectors(v)) out.push_back(vec.text);
    }
    out.push_back("<s>a</s><unk> <|endoftext|>x<|begin_of_text|><|eot_id|><|im_start|>user<|im_end|><think>y</think>");
    return out;
  }();
  return strings;
}

const tok::EncodeOptions kPlain{false, true};
const tok::EncodeOptions kNoParse{false, false};

// `got` tokenizes and decodes every test string (and `extra`) exactly as `want` does.
void check_same(const Tokenizer& got, const Tokenizer& want, const std::vector<std::string>& extra = {}) {
  CHECK(got.vocab_size() == want.vocab_size());
  CHECK(got.bos_id() == want.bos_id());
  CHECK(got.eos_id() == want.eos_id());
  CHECK(got.pad_id() == want.pad_id());
  std::vector<std::string> strings = all_strings();
  strings.insert(strings.end(), extra.begin(), extra.end());
  for (const auto& s : strings) {
    INFO("input: \"" << s.substr(0, 120) << "\"");
    const auto ids = want.encode(s);
    REQUIRE(got.encode(s) == ids);
    REQUIRE(got.encode(s, kPlain) == want.encode(s, kPlain));
    REQUIRE(got.encode(s, kNoParse) == want.encode(s, kNoParse));
    CHECK(got.decode(ids) == want.decode(ids));
    CHECK(got.decode(ids, true) == want.decode(ids, true));
  }
}

// llama.cpp's published ids for a vocabulary (add_special_tokens=False).
void check_llamacpp_vectors(const Tokenizer& t, const std::string& name) {
  const auto vectors = llamacpp_vectors(name);
  REQUIRE(vectors.size() == 46);
  for (const auto& v : vectors) {
    INFO(name << " input: \"" << v.text << "\"");
    CHECK(t.encode(v.text, kPlain) == v.ids);
  }
}

// The transformers.js goldens.
void check_golden(const Tokenizer& t, const std::string& name) {
  const nlohmann::json cases = golden(name)["cases"];  // a copy: golden() returns a temporary
  for (const auto& c : cases) {
    const auto text = c["text"].get<std::string>();
    INFO(name << " input: \"" << text.substr(0, 120) << "\"");
    CHECK(t.encode(text, kPlain) == c["ids"].get<std::vector<TokenId>>());
    CHECK(t.encode(text) == c["ids_with_special"].get<std::vector<TokenId>>());
    CHECK(t.encode(text, kNoParse) == c["ids_no_parse_special"].get<std::vector<TokenId>>());
  }
}

// The same chat template, rendered and encoded the same.
void check_same_chat(const Tokenizer& got, const Tokenizer& want) {
  CHECK(got.config().value("chat_template", nlohmann::json()) ==
        want.config().value("chat_template", nlohmann::json()));
  const nlohmann::ordered_json messages = nlohmann::ordered_json::array(
      {{{"role", "system"}, {"content", "You are brief."}},
       {{"role", "user"}, {"content", "Hello, who are you? ünïcödé 你好"}},
       {{"role", "assistant"}, {"content", "A model."}},
       {{"role", "user"}, {"content", "Tell me a story."}}});
  for (bool agp : {false, true}) {
    hearth::chat::ChatPromptOptions options;
    options.add_generation_prompt = agp;
    const auto a = hearth::chat::chat_prompt_encode(got, messages, options);
    const auto b = hearth::chat::chat_prompt_encode(want, messages, options);
    CHECK(a.text == b.text);
    CHECK(a.ids == b.ids);
  }
}

// ---- llama.cpp's SentencePiece merging, written plainly ----

// llm_tokenizer_spm on one stretch of text: " " -> "▁" with a "▁" in front (add_space_prefix), split into
// UTF-8 characters, then repeatedly merge the adjacent pair whose concatenation is a token of highest score
// (leftmost among equals); symbols that are not tokens become their bytes' <0xAB> tokens.
std::vector<TokenId> spm_reference(const std::string& text, const std::vector<std::string>& tokens,
                                   const std::vector<double>& scores) {
  if (text.empty()) return {};
  std::unordered_map<std::string, TokenId> ids;
  for (size_t i = 0; i < tokens.size(); ++i) ids[tokens[i]] = static_cast<TokenId>(i);
  std::string escaped = "\u2581";
  for (char c : text) escaped += c == ' ' ? std::string("\u2581") : std::string(1, c);
  std::vector<std::string> symbols;
  for (size_t i = 0; i < escaped.size();) {
    const auto b = static_cast<unsigned char>(escaped[i]);
    const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    symbols.push_back(escaped.substr(i, len));
    i += len;
  }
  for (;;) {
    int best = -1;
    double best_score = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = ids.find(symbols[i] + symbols[i + 1]);
      if (it != ids.end() && (best < 0 || scores[it->second] > best_score)) {
        best = static_cast<int>(i);
        best_score = scores[it->second];
      }
    }
    if (best < 0) break;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + best + 1);
  }
  std::vector<TokenId> out;
  for (const auto& s : symbols) {
    if (ids.count(s)) {
      out.push_back(ids[s]);
      continue;
    }
    for (unsigned char c : s) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", c);
      out.push_back(ids.at(hex));
    }
  }
  return out;
}

// Random text over a vocabulary: runs of its tokens (▁ as space) mixed with characters it does not have.
std::vector<std::string> random_texts(const std::vector<std::string>& tokens, size_t count, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> pieces;
  for (const auto& t : tokens) {
    if (t.size() > 1 && t[0] == '<') continue;  // <unk>, <0x41>
    std::string p;
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, 3, "\u2581") == 0) p += ' ', i += 3;
      else p += t[i++];
    }
    pieces.push_back(p);
  }
  const std::vector<std::string> others = {" ", "  ", "\n", "\t", "é", "你", "🦙", "0", "'", "x", "ñ", "\u2581"};
  std::vector<std::string> texts;
  for (size_t k = 0; k < count; ++k) {
    std::string s;
    const size_t n = 1 + rng() % 12;
    for (size_t i = 0; i < n; ++i) s += rng() % 4 ? pieces[rng() % pieces.size()] : others[rng() % others.size()];
    texts.push_back(s);
  }
  return texts;
}

// Expects `f` to throw a FormatError whose message contains every one of `parts`.
template <class F>
void expect_format_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL("no FormatError");
  } catch (const hearth::FormatError& e) {
    for (const auto& p : parts) CHECK_THAT(e.what(), Contains(p));
  }
}

}  // namespace

// ---- (a) files llama.cpp made ----

TEST_CASE("gguf vocab: kq256 (llama.cpp-made, model llama) tokenizes like stories260K's HF tokenizer",
          "[tokenizer][gguf]") {
  const auto t = tok::tokenizer_from_gguf(*kq256_file());
  const auto hf = Tokenizer::load(hearth::test::stories_dir());
  check_golden(t, "stories260K");
  const std::vector<std::string> vocab = kq256_file()->get_string_array("tokenizer.ggml.tokens");
  check_same(t, hf, random_texts(vocab, 3000, 7));
  CHECK(t.bos_id() == 1);
  CHECK(t.eos_id() == 2);
  CHECK(t.config()["bos_token"] == "<s>");
  CHECK(t.config()["eos_token"] == "</s>");
  CHECK(t.config()["unk_token"] == "<unk>");
  CHECK(t.config()["add_bos_token"] == true);
  CHECK(t.is_special(0));
  CHECK(t.is_special(1));
  CHECK_FALSE(t.is_special(100));
  const auto expected = nlohmann::json::parse(read_file(hearth::test::stories_dir() / "expected.json"));
  CHECK(t.encode(expected["prompt_text"].get<std::string>()) ==
        expected["prompt_ids_with_bos"].get<std::vector<TokenId>>());
}

TEST_CASE("gguf vocab: kq256 merges as llama.cpp's SentencePiece tokenizer does (plain reference)",
          "[tokenizer][gguf]") {
  const auto file = kq256_file();
  const auto tokens = file->get_string_array("tokenizer.ggml.tokens");
  const auto scores = file->get_float_array("tokenizer.ggml.scores");
  const auto t = tok::tokenizer_from_gguf(*file);
  auto texts = random_texts(tokens, 3000, 11);
  const nlohmann::json cases = golden("stories260K")["cases"];  // a copy: golden() returns a temporary
  for (const auto& c : cases) {
    const auto text = c["text"].get<std::string>();
    if (text.find('<') == std::string::npos) texts.push_back(text);  // no special tokens to split off
  }
  for (const auto& text : texts) {
    INFO("input: \"" << text << "\"");
    REQUIRE(t.encode(text, kNoParse) == spm_reference(text, tokens, scores));
  }
}

// ---- (c) hearth's metadata against the converter's ----

TEST_CASE("gguf vocab: stories260K's metadata equals the converter's in kq256", "[tokenizer][gguf]") {
  const auto kv = tok::tokenizer_gguf_metadata(Tokenizer::load(hearth::test::stories_dir()));
  for (const char* name : {"model-f16.gguf", "model-q8_0.gguf", "model-q4_k_m.gguf"}) {
    const auto file = io::GgufFile::open(hearth::test::fixtures_dir() / "kq256" / name);
    size_t compared = 0;
    for (const auto& ref : file->metadata()) {
      if (ref.key.rfind("tokenizer.", 0) != 0) continue;
      INFO(name << ": " << ref.key);
      const io::GgufValue* ours = find_kv(kv, ref.key);
      REQUIRE(ours != nullptr);
      CHECK(*ours == ref.value);  // type, element type and bytes: scores bit for bit (-0.0 included)
      ++compared;
    }
    CHECK(compared == 9);  // model, tokens, scores, token_type, bos, eos, unknown, add_bos, add_eos
    CHECK(kv.size() == compared);
  }
  // And back: the tokenizer read from kq256 writes kq256's metadata again.
  const auto again = tok::tokenizer_gguf_metadata(tok::tokenizer_from_gguf(*kq256_file()));
  REQUIRE(again.size() == kv.size());
  for (size_t i = 0; i < kv.size(); ++i) {
    CHECK(again[i].key == kv[i].key);
    CHECK(again[i].value == kv[i].value);
  }
}

// ---- (b) round trips ----

TEST_CASE("gguf vocab: stories260K round trip (llama)", "[tokenizer][gguf]") {
  const auto hf = Tokenizer::load(hearth::test::stories_dir());
  const auto t = round_trip(hf, "stories260K");
  check_golden(t, "stories260K");
  check_same(t, hf);
  check_same_chat(t, hf);
}

TEST_CASE("gguf vocab: GPT-2 round trip (gpt2, pre gpt-2)", "[tokenizer][gguf]") {
  const auto hf = Tokenizer::load(hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2");
  const auto kv = tok::tokenizer_gguf_metadata(hf);
  CHECK(*find_kv(kv, "tokenizer.ggml.model")->as_string() == "gpt2");
  CHECK(*find_kv(kv, "tokenizer.ggml.pre")->as_string() == "gpt-2");
  CHECK(find_kv(kv, "tokenizer.ggml.merges")->size() == 50000);
  CHECK(find_kv(kv, "tokenizer.ggml.token_type")->item(50256).as_int() == 3);  // <|endoftext|>: control
  const auto t = round_trip(hf, "gpt2");
  check_llamacpp_vectors(t, "gpt-2");
  check_same(t, hf);
  check_same_chat(t, hf);
}

TEST_CASE("gguf vocab: Llama 3 round trip (gpt2, pre llama-bpe)", "[tokenizer][gguf]") {
  const auto hf = Tokenizer::load(hearth::test::assets_dir() / "llama3");
  const auto kv = tok::tokenizer_gguf_metadata(hf);
  CHECK(*find_kv(kv, "tokenizer.ggml.pre")->as_string() == "llama-bpe");
  CHECK(find_kv(kv, "tokenizer.ggml.tokens")->size() == 128256);
  CHECK(find_kv(kv, "tokenizer.ggml.eot_token_id")->as_uint() == hf.token_to_id("<|eot_id|>"));
  const auto t = round_trip(hf, "llama3");
  check_llamacpp_vectors(t, "llama-bpe");
  check_golden(t, "llama3");
  check_same(t, hf);
  check_same_chat(t, hf);
}

TEST_CASE("gguf vocab: Qwen3 round trip (gpt2, pre qwen2)", "[tokenizer][gguf]") {
  const auto hf = Tokenizer::load(hearth::test::assets_dir() / "qwen3");
  const auto kv = tok::tokenizer_gguf_metadata(hf);
  CHECK(*find_kv(kv, "tokenizer.ggml.pre")->as_string() == "qwen2");
  CHECK(find_kv(kv, "tokenizer.ggml.eot_token_id")->as_uint() == hf.token_to_id("<|im_end|>"));
  CHECK(find_kv(kv, "tokenizer.ggml.token_type")->item(*hf.token_to_id("<think>")).as_int() == 4);  // user-defined
  CHECK(find_kv(kv, "tokenizer.ggml.bos_token_id") == nullptr);
  const auto t = round_trip(hf, "qwen3");
  check_llamacpp_vectors(t, "qwen2");
  check_golden(t, "qwen3");
  check_same(t, hf);
  check_same_chat(t, hf);
}

TEST_CASE("gguf vocab: SmolLM's pipeline round trips as pre smollm", "[tokenizer][gguf]") {
  // GPT-2's vocabulary behind SmolLM's pre-tokenizer (single digits, then the GPT-2 regex).
  auto tj = nlohmann::json::parse(
      read_file(hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2" / "tokenizer.json"));
  tj["pre_tokenizer"] = nlohmann::json::parse(
      R"({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
          {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]})");
  const auto hf = Tokenizer::from_json(tj, nullptr, "smollm-style");
  CHECK(*find_kv(tok::tokenizer_gguf_metadata(hf), "tokenizer.ggml.pre")->as_string() == "smollm");
  const auto t = round_trip(hf, "smollm");
  CHECK(t.encode("12345", kPlain).size() == 5);
  check_same(t, hf);
}

TEST_CASE("gguf vocab: metadata survives a second round trip unchanged", "[tokenizer][gguf]") {
  for (const fs::path& dir : {hearth::test::assets_dir() / "qwen3", hearth::test::stories_dir()}) {
    INFO(dir);
    const auto first = tok::tokenizer_gguf_metadata(Tokenizer::load(dir));
    const auto second = tok::tokenizer_gguf_metadata(round_trip(Tokenizer::load(dir), "twice"));
    REQUIRE(first.size() == second.size());
    for (size_t i = 0; i < first.size(); ++i) {
      INFO(first[i].key);
      CHECK(first[i].key == second[i].key);
      CHECK(first[i].value == second[i].value);
    }
  }
}

TEST_CASE("gguf vocab: named chat templates", "[tokenizer][gguf]") {
  auto tj = nlohmann::json::parse(read_file(hearth::test::stories_dir() / "tokenizer.json"));
  const nlohmann::json config = {
      {"bos_token", "<s>"},
      {"eos_token", "</s>"},
      {"chat_template",
       {{{"name", "default"}, {"template", "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"}},
        {{"name", "tool_use"}, {"template", "{{ tools | tojson }}"}}}}};
  const auto hf = Tokenizer::from_json(tj, config, "named");
  const auto kv = tok::tokenizer_gguf_metadata(hf);
  CHECK(find_kv(kv, "tokenizer.chat_template") != nullptr);
  CHECK(find_kv(kv, "tokenizer.chat_template.tool_use") != nullptr);
  CHECK(find_kv(kv, "tokenizer.chat_templates")->size() == 1);
  const auto t = round_trip(hf, "named");
  CHECK(t.config()["chat_template"] == config["chat_template"]);
  check_same_chat(t, hf);
}

// ---- (d) errors ----

namespace {

std::vector<io::GgufKv> stories_metadata() {
  return tok::tokenizer_gguf_metadata(Tokenizer::load(hearth::test::stories_dir()));
}

void set_kv(std::vector<io::GgufKv>& kv, const std::string& key, io::GgufValue value) {
  for (auto& e : kv) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  kv.push_back({key, std::move(value)});
}

void erase_kv(std::vector<io::GgufKv>& kv, const std::string& key) {
  kv.erase(std::remove_if(kv.begin(), kv.end(), [&](const io::GgufKv& e) { return e.key == key; }), kv.end());
}

void expect_read_error(const std::vector<io::GgufKv>& kv, const std::vector<std::string>& parts) {
  const auto file = write_gguf(kv, "bad");
  expect_format_error([&] { tok::tokenizer_from_gguf(*file); }, parts);
}

}  // namespace

TEST_CASE("gguf vocab: reading rejects what it cannot build", "[tokenizer][gguf]") {
  SECTION("unknown tokenizer model") {
    for (const char* model : {"bert", "t5", "rwkv"}) {
      auto kv = stories_metadata();
      set_kv(kv, "tokenizer.ggml.model", io::GgufValue::string(model));
      expect_read_error(kv, {"bad.gguf", "tokenizer.ggml.model", model});
    }
  }
  SECTION("no tokenizer at all") {
    expect_read_error({{"general.architecture", io::GgufValue::string("llama")}}, {"tokenizer.ggml.model", "missing"});
  }
  SECTION("missing tokens") {
    auto kv = stories_metadata();
    erase_kv(kv, "tokenizer.ggml.tokens");
    expect_read_error(kv, {"tokenizer.ggml.tokens", "missing"});
  }
  SECTION("tokens of the wrong type") {
    auto kv = stories_metadata();
    set_kv(kv, "tokenizer.ggml.tokens", io::GgufValue::array_of(std::vector<int32_t>{1, 2, 3}));
    expect_read_error(kv, {"tokenizer.ggml.tokens"});
  }
  SECTION("scores and token types of another length") {
    for (const char* key : {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
      auto kv = stories_metadata();
      if (std::strcmp(key, "tokenizer.ggml.scores") == 0) {
        set_kv(kv, key, io::GgufValue::array_of(std::vector<float>(511, 0.0f)));
      } else {
        set_kv(kv, key, io::GgufValue::array_of(std::vector<int32_t>(513, 1)));
      }
      expect_read_error(kv, {key, "512", "one entry per token"});
    }
  }
  SECTION("duplicate token") {
    auto kv = stories_metadata();
    auto tokens = stories_metadata()[1].value;  // tokenizer.ggml.tokens
    std::vector<std::string> list;
    for (uint64_t i = 0; i < tokens.size(); ++i) list.push_back(*tokens.item(i).as_string());
    list[300] = list[299];
    set_kv(kv, "tokenizer.ggml.tokens", io::GgufValue::array_of(list));
    expect_read_error(kv, {"tokenizer.ggml.tokens", "duplicate", "299", "300"});
  }
  SECTION("unknown token type") {
    auto kv = stories_metadata();
    std::vector<int32_t> types(512, 1);
    types[7] = 9;
    set_kv(kv, "tokenizer.ggml.token_type", io::GgufValue::array_of(types));
    expect_read_error(kv, {"tokenizer.ggml.token_type", "9"});
  }
  SECTION("special token id out of range") {
    auto kv = stories_metadata();
    set_kv(kv, "tokenizer.ggml.eos_token_id", io::GgufValue::u32(512));
    expect_read_error(kv, {"tokenizer.ggml.eos_token_id", "out of range", "512"});
  }
  SECTION("BOS asked for but unknown") {
    auto kv = tok::tokenizer_gguf_metadata(Tokenizer::load(hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2"));
    erase_kv(kv, "tokenizer.ggml.bos_token_id");
    set_kv(kv, "tokenizer.ggml.add_bos_token", io::GgufValue::boolean(true));
    expect_read_error(kv, {"tokenizer.ggml.add_bos_token"});
  }
  SECTION("gpt2: pre-tokenizer missing or unknown") {
    auto kv = tok::tokenizer_gguf_metadata(Tokenizer::load(hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2"));
    set_kv(kv, "tokenizer.ggml.pre", io::GgufValue::string("falcon"));
    expect_read_error(kv, {"tokenizer.ggml.pre", "\"falcon\"", "llama-bpe"});
    erase_kv(kv, "tokenizer.ggml.pre");
    expect_read_error(kv, {"tokenizer.ggml.pre", "missing"});
  }
  SECTION("gpt2: merges missing or naming unknown tokens") {
    auto kv = tok::tokenizer_gguf_metadata(Tokenizer::load(hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2"));
    set_kv(kv, "tokenizer.ggml.merges", io::GgufValue::array_of(std::vector<std::string>{"Ġ t", "h e", "zzzq x"}));
    expect_read_error(kv, {"tokenizer.ggml.merges[2]", "\"zzzq\""});
    set_kv(kv, "tokenizer.ggml.merges", io::GgufValue::array_of(std::vector<std::string>{"Ġt"}));
    expect_read_error(kv, {"tokenizer.ggml.merges[0]", "bad merge"});
    erase_kv(kv, "tokenizer.ggml.merges");
    expect_read_error(kv, {"tokenizer.ggml.merges", "missing"});
  }
}

TEST_CASE("gguf vocab: writing rejects what GGUF cannot express", "[tokenizer][gguf]") {
  const auto gpt2 = nlohmann::json::parse(
      read_file(hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2" / "tokenizer.json"));
  const auto stories = nlohmann::json::parse(read_file(hearth::test::stories_dir() / "tokenizer.json"));
  const nlohmann::json stories_config = {
      {"bos_token", "<s>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"tokenizer_class", "LlamaTokenizer"}};
  auto write = [](const nlohmann::json& tj, const nlohmann::json& config) {
    return [tj, config] { tok::tokenizer_gguf_metadata(Tokenizer::from_json(tj, config, "t")); };
  };
  SECTION("a byte-level pre-tokenizer llama.cpp has no name for") {
    auto tj = gpt2;
    tj["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "WhitespaceSplit"}}, tj["pre_tokenizer"]}}};
    expect_format_error(write(tj, nullptr), {"pre_tokenizer", "gpt-2", "llama-bpe", "qwen2", "smollm"});
  }
  SECTION("the right pre-tokenizer with another normalizer") {
    auto tj = gpt2;
    tj["normalizer"] = {{"type", "NFC"}};
    expect_format_error(write(tj, nullptr), {"pre_tokenizer"});
  }
  SECTION("an added token with lstrip") {
    auto tj = gpt2;
    tj["added_tokens"][0]["lstrip"] = true;
    expect_format_error(write(tj, nullptr), {"added_tokens[0]", "lstrip"});
  }
  SECTION("a post-processor adding more than BOS") {
    auto tj = stories;
    tj["post_processor"]["single"].push_back({{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}});
    expect_format_error(write(tj, {{"bos_token", "<s>"}, {"eos_token", "</s>"}}),
                        {"post_processor", "EOS last", "[1]"});
  }
  SECTION("SentencePiece with Metaspace (▁ only at the very start)") {
    auto tj = stories;
    tj["normalizer"] = nullptr;
    tj["pre_tokenizer"] = {
        {"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}};
    expect_format_error(write(tj, stories_config), {"normalizer"});
  }
  SECTION("two vocabulary strings with one id (std::out_of_range escaped; found by fuzz_tokenizer)") {
    // One token moved onto the id of another: decoding keeps one of the two strings for the id, and the merges
    // that make the other name a string GGUF has no id for.
    for (const auto* base : {&stories, &gpt2}) {
      auto tj = *base;
      auto& vocab = tj["model"]["vocab"];
      const bool spm = base == &stories;
      vocab[spm ? "\u2581want" : "the"] = vocab[spm ? "\u2581happy" : "and"];
      expect_format_error(write(tj, spm ? stories_config : nullptr), {"model.vocab", "sharing its id"});
    }
  }
  SECTION("SentencePiece merges whose order scores cannot give") {
    auto tj = stories;
    // "▁the" made by merges 6 ("▁t he") and 12 ("▁th e") with other tokens' merges between them.
    auto& merges = tj["model"]["merges"];
    const nlohmann::json moved = merges[7];
    merges.erase(merges.begin() + 7);
    merges.insert(merges.begin() + 12, moved);
    expect_format_error(write(tj, stories_config), {"model.merges"});
  }
  SECTION("SentencePiece without a merge that llama.cpp would make") {
    auto tj = stories;
    tj["model"]["merges"].erase(tj["model"]["merges"].begin() + 7);  // "▁th e": "▁the" also from "▁t he"
    expect_format_error(write(tj, stories_config), {"model.merges", "\"\u2581th\" + \"e\""});
  }
  SECTION("continuing_subword_prefix") {
    auto tj = gpt2;
    tj["model"]["continuing_subword_prefix"] = "##";
    tj["model"]["merges"] = nlohmann::json::array();
    expect_format_error(write(tj, nullptr), {"continuing_subword_prefix"});
  }
}

// ---- llama.cpp itself ----

namespace {

// node-llama-cpp (llama.cpp's prebuilt CPU binaries), installed by fetch_test_assets on Linux x86-64.
fs::path llamacpp_ref_dir() { return hearth::test::assets_dir() / "llamacpp-ref" / "node_modules" / "node-llama-cpp"; }

struct LlamaCppIds {
  std::vector<std::vector<TokenId>> no_parse, parse_special;
};

// llama_tokenize(add_special=false, parse_special=false/true) of each text, by scripts/llamacpp_ref/tokenize.mjs.
LlamaCppIds llamacpp_tokenize(const fs::path& model, const std::vector<std::string>& texts) {
  const fs::path request = temp_dir() / "llamacpp_request.json", out = temp_dir() / "llamacpp_out.json";
  std::ofstream(request) << nlohmann::json{{"model", model.string()}, {"texts", texts}}.dump();
  const std::string command = "node '" +
                              (hearth::test::source_dir() / "scripts" / "llamacpp_ref" / "tokenize.mjs").string() +
                              "' '" + hearth::test::assets_dir().string() + "' '" + request.string() + "' '" +
                              out.string() + "'";
  REQUIRE(std::system(command.c_str()) == 0);
  const auto j = nlohmann::json::parse(read_file(out));
  return {j["no_parse"].get<std::vector<std::vector<TokenId>>>(),
          j["parse_special"].get<std::vector<std::vector<TokenId>>>()};
}

// A vocabulary-only GGUF llama.cpp loads: kq256's model keys (architecture llama) plus `tokenizer_kv`.
fs::path write_for_llamacpp(const std::vector<io::GgufKv>& tokenizer_kv, const std::string& name) {
  std::vector<io::GgufKv> kv;
  const auto kq256 = kq256_file();
  for (const auto& e : kq256->metadata()) {
    if (e.key.rfind("tokenizer.", 0) != 0 && e.key != "llama.vocab_size") kv.push_back(e);
  }
  kv.insert(kv.end(), tokenizer_kv.begin(), tokenizer_kv.end());
  const fs::path path = temp_dir() / (name + "-llamacpp.gguf");
  io::gguf_write(path, kv, {});
  return path;
}

// Token texts llama.cpp makes control tokens whatever the file says (src/llama-vocab.cpp finds end-of-generation
// and fill-in-the-middle tokens by their text). Where one is a normal or non-special token (e.g. "</s>" in
// Qwen3's vocabulary), llama.cpp splits it off as a special token and transformers does not.
const char* const kControlByText[] = {"</s>",           "<|endoftext|>",  "<|im_end|>",     "<|eot_id|>",
                                      "<|eom_id|>",     "<|end|>",        "<end_of_turn>",  "<EOT>",
                                      "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                                      "<|repo_name|>",  "<|file_sep|>",   "<|end_of_text|>"};

bool llamacpp_promotes_a_token_in(const Tokenizer& t, const std::string& text) {
  for (const char* control : kControlByText) {
    const auto id = t.token_to_id(control);
    if (id && !t.is_special(*id) && text.find(control) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("gguf vocab: llama.cpp itself gives tokenizer_from_gguf's ids", "[tokenizer][gguf][llamacpp]") {
  if (!fs::exists(llamacpp_ref_dir())) {
    WARN("llama.cpp reference not installed (fetch_test_assets installs it on Linux x86-64 only); skipped");
    return;
  }
  struct Case {
    std::string name;
    fs::path gguf;
    bool nfc;  // llama.cpp's qwen2 has no NFC step: hand it the text as the Hugging Face normalizer leaves it
  };
  std::vector<Case> cases = {
      {"kq256 (llama.cpp-made)", hearth::test::fixtures_dir() / "kq256" / "model-q8_0.gguf", false}};
  const std::vector<std::pair<std::string, fs::path>> sources = {
      {"stories260K", hearth::test::stories_dir()},
      {"gpt2", hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2"},
      {"llama3", hearth::test::assets_dir() / "llama3"},
      {"qwen3", hearth::test::assets_dir() / "qwen3"}};
  for (const auto& [name, dir] : sources) {
    cases.push_back(
        {name, write_for_llamacpp(tok::tokenizer_gguf_metadata(Tokenizer::load(dir)), name), name == "qwen3"});
  }
  for (const auto& c : cases) {
    const auto t = tok::tokenizer_from_gguf(*io::GgufFile::open(c.gguf));
    std::vector<std::string> texts;
    for (const auto& s : all_strings()) {
      if (!llamacpp_promotes_a_token_in(t, s)) texts.push_back(s);
    }
    if (c.name.rfind("kq256", 0) == 0) {
      const auto more = random_texts(io::GgufFile::open(c.gguf)->get_string_array("tokenizer.ggml.tokens"), 1000, 5);
      texts.insert(texts.end(), more.begin(), more.end());
    }
    std::vector<std::string> inputs;
    for (const auto& s : texts) inputs.push_back(c.nfc ? tok::nfc(s) : s);
    const LlamaCppIds ref = llamacpp_tokenize(c.gguf, inputs);
    REQUIRE(ref.no_parse.size() == texts.size());
    INFO(c.name << ": " << all_strings().size() - (texts.size() - (c.name.rfind("kq256", 0) == 0 ? 1000 : 0))
                << " strings hold a token llama.cpp promotes to control");
    // Qwen3 has </s> as an ordinary token that llama.cpp promotes by its text: 4 of the strings hold it (the
    // count was 3 while a use-after-free in all_strings() dropped some golden strings).
    CHECK(texts.size() >= all_strings().size() - 4);
    for (size_t i = 0; i < texts.size(); ++i) {
      INFO(c.name << " input: \"" << texts[i].substr(0, 120) << "\"");
      CHECK(t.encode(texts[i], kNoParse) == ref.no_parse[i]);
      CHECK(t.encode(texts[i], kPlain) == ref.parse_special[i]);
    }
  }
}
