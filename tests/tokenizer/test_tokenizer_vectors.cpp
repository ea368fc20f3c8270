// Tokenizer test vectors: llama.cpp's published HF-tokenizers outputs (tests/fixtures/tokenizer-tests) and
// the goldens made by scripts/make_tokenizer_goldens.mjs with transformers.js (tests/golden/tokenizer).
// Every comparison is exact (token ids are integers).
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace tok = hearth::tokenizer;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Vector {
  std::string text;
  std::vector<tok::TokenId> ids;
};

// .inp: every string is followed by "\n__ggml_vocab_test__\n" (strings may be empty or all whitespace);
// .out: one line of space-separated ids per string.
std::vector<Vector> read_llamacpp_vectors(const std::string& name) {
  const auto dir = hearth::test::fixtures_dir() / "tokenizer-tests" / "llamacpp";
  const std::string inp = read_file(dir / ("ggml-vocab-" + name + ".gguf.inp"));
  const std::string out = read_file(dir / ("ggml-vocab-" + name + ".gguf.out"));
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<Vector> vectors;
  size_t pos = 0;
  while (pos < inp.size()) {
    const size_t end = inp.find(sep, pos);
    REQUIRE(end != std::string::npos);  // the file ends with a separator
    vectors.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    REQUIRE(i < vectors.size());
    std::istringstream ids(line);
    tok::TokenId id;
    while (ids >> id) vectors[i].ids.push_back(id);
    ++i;
  }
  REQUIRE(i == vectors.size());
  return vectors;
}

void check_vectors(const tok::Tokenizer& t, const std::string& name) {
  const auto vectors = read_llamacpp_vectors(name);
  REQUIRE(vectors.size() == 46);
  tok::EncodeOptions plain;
  plain.add_special_tokens = false;
  for (const auto& v : vectors) {
    INFO(name << " input: \"" << v.text << "\"");
    CHECK(t.encode(v.text, plain) == v.ids);
  }
}

}  // namespace

TEST_CASE("gpt-2 matches llama.cpp's HF vectors", "[tokenizer]") {
  const auto t = tok::Tokenizer::load(hearth::test::fixtures_dir() / "tokenizer-tests" / "gpt2");
  check_vectors(t, "gpt-2");
}

TEST_CASE("Llama 3 (llama-bpe) matches llama.cpp's HF vectors", "[tokenizer]") {
  const auto t = tok::Tokenizer::load(hearth::test::assets_dir() / "llama3");
  check_vectors(t, "llama-bpe");
}

TEST_CASE("Qwen3 (qwen2) matches llama.cpp's HF vectors", "[tokenizer]") {
  const auto t = tok::Tokenizer::load(hearth::test::assets_dir() / "qwen3");
  check_vectors(t, "qwen2");
}

TEST_CASE("stories260K encodes the prompt of expected.json", "[tokenizer]") {
  const auto t = tok::Tokenizer::load(hearth::test::stories_dir());
  const auto expected = nlohmann::json::parse(read_file(hearth::test::stories_dir() / "expected.json"));
  const auto text = expected["prompt_text"].get<std::string>();
  const auto ids = expected["prompt_ids_with_bos"].get<std::vector<tok::TokenId>>();
  CHECK(t.encode(text) == ids);
  CHECK(t.bos_id() == 1);
  CHECK(t.eos_id() == 2);
  CHECK(t.decode(ids, true) == text);
}

namespace {

void check_golden(const tok::Tokenizer& t, const std::string& name) {
  const auto golden = nlohmann::json::parse(read_file(hearth::test::golden_dir() / "tokenizer" / (name + ".json")));
  REQUIRE(golden["cases"].size() >= 30);
  for (const auto& c : golden["cases"]) {
    const auto text = c["text"].get<std::string>();
    INFO(name << " input: \"" << text.substr(0, 120) << "\"");
    tok::EncodeOptions plain;
    plain.add_special_tokens = false;
    CHECK(t.encode(text, plain) == c["ids"].get<std::vector<tok::TokenId>>());
    CHECK(t.encode(text) == c["ids_with_special"].get<std::vector<tok::TokenId>>());
    tok::EncodeOptions no_parse;
    no_parse.add_special_tokens = false;
    no_parse.parse_special = false;
    CHECK(t.encode(text, no_parse) == c["ids_no_parse_special"].get<std::vector<tok::TokenId>>());
  }
}

}  // namespace

TEST_CASE("Llama 3 matches the transformers.js goldens", "[tokenizer]") {
  check_golden(tok::Tokenizer::load(hearth::test::assets_dir() / "llama3"), "llama3");
}

TEST_CASE("Qwen3 matches the transformers.js goldens", "[tokenizer]") {
  check_golden(tok::Tokenizer::load(hearth::test::assets_dir() / "qwen3"), "qwen3");
}

TEST_CASE("stories260K matches the transformers.js goldens", "[tokenizer]") {
  check_golden(tok::Tokenizer::load(hearth::test::stories_dir()), "stories260K");
}
