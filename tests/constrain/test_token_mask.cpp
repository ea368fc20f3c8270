// Token masks over real vocabularies (Qwen3's 151k byte-level BPE, stories260K's SentencePiece with byte
// fallback): the trie walk with its starred-class shortcut must allow exactly the tokens that a brute-force
// check (advance the matcher by each token's bytes, one by one) allows; and a real tokenization of a valid
// document must be allowed token by token.
#include <catch2/catch.hpp>

#include "constrain/constraint.h"
#include "constrain/json_schema.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

using namespace hearth::constrain;
using hearth::tokenizer::Tokenizer;
using Json = nlohmann::ordered_json;

namespace {

std::vector<uint64_t> brute_force(const Grammar& g, const TokenTrie& trie, const std::string& prefix, bool stop_ok,
                                  const std::vector<TokenId>& stops) {
  Matcher m(g);
  MatchState start = m.start();
  REQUIRE(m.advance(start, prefix));
  std::vector<uint64_t> bits((trie.vocab_size() + 63) / 64, 0);
  for (size_t id = 0; id < trie.vocab_size(); ++id) {
    const std::string* b = trie.bytes(static_cast<TokenId>(id));
    if (!b) continue;
    MatchState s = start;
    if (m.advance(s, *b)) bit_set(bits, id);
  }
  if (stop_ok) {
    for (TokenId id : stops) bit_set(bits, static_cast<size_t>(id));
  }
  return bits;
}

size_t count(const std::vector<uint64_t>& bits) {
  size_t n = 0;
  for (uint64_t w : bits) n += static_cast<size_t>(__builtin_popcountll(w));
  return n;
}

// Feeds the tokenization of `doc` through a constraint, checking the mask against brute force at each step.
void check_document(const Tokenizer& tok, const Grammar& grammar, const std::string& doc) {
  auto trie = std::make_shared<const TokenTrie>(tok.token_bytes_all());
  const std::vector<TokenId> stops = {*tok.eos_id()};
  auto tg = std::make_shared<const TokenGrammar>(grammar, trie, stops);
  TokenConstraint c(tg);
  const std::vector<TokenId> ids = tok.encode(doc, {false, false});
  std::string prefix;
  for (size_t i = 0; i <= ids.size(); ++i) {
    INFO("after " << i << " tokens: " << prefix);
    const auto& got = c.allowed();
    const auto want = brute_force(grammar, *trie, prefix, c.complete(), stops);
    CHECK(count(got) == count(want));
    CHECK(got == want);
    if (i == ids.size()) break;
    REQUIRE(bit_get(got, static_cast<size_t>(ids[i])));
    c.accept(ids[i]);
    prefix += *trie->bytes(ids[i]);
  }
  CHECK(prefix.substr(prefix.find_first_not_of(' ')) == doc);  // SentencePiece starts with a space
  CHECK(c.complete());
  CHECK(bit_get(c.allowed(), static_cast<size_t>(stops[0])));
  c.accept(stops[0]);
  CHECK(count(c.allowed()) == 0);
}

}  // namespace

TEST_CASE("token bytes: concatenated, they are the text, also inside characters", "[constrain]") {
  const Tokenizer qwen = Tokenizer::load(hearth::test::assets_dir() / "qwen3");
  const auto bytes = qwen.token_bytes_all();
  const std::string text = "Grüße, 世界! 🦙 {\"a\": [1, 2]}\n\ttab";
  std::string joined;
  for (TokenId id : qwen.encode(text, {false, false})) joined += *bytes[id];
  CHECK(joined == text);
  CHECK_FALSE(bytes[*qwen.token_to_id("<|im_end|>")].has_value());  // special
  // stories260K: SentencePiece pieces mid-text, "<0x0A>" byte fallback.
  const Tokenizer sp = Tokenizer::load(hearth::test::stories_dir());
  const auto sp_bytes = sp.token_bytes_all();
  CHECK(*sp_bytes[*sp.token_to_id("<0x0A>")] == "\n");
  std::string sp_joined;
  for (TokenId id : sp.encode("Once upon\na time", {false, false})) sp_joined += *sp_bytes[id];
  CHECK(sp_joined == " Once upon\na time");  // the first piece's "▁" is a space mid-text; SentencePiece adds it
}

TEST_CASE("token mask: the trie walk equals brute force on Qwen3's vocabulary", "[constrain]") {
  const Tokenizer qwen = Tokenizer::load(hearth::test::assets_dir() / "qwen3");
  const Json schema = Json::parse(R"({"type":"object","properties":{"name":{"type":"string"},
    "city":{"enum":["Zürich","東京"]},"n":{"type":"number"},"ok":{"type":"boolean"},
    "notes":{"type":"array","items":{"type":"string","maxLength":8}}},"required":["name","city","n"],
    "additionalProperties":false})");
  check_document(qwen, json_schema_grammar(schema),
                 "{\"name\": \"Ann \\\"the\\\" 🦙 Müller\", \"city\":\"東京\", \"n\": -12.5e3, \"ok\": true, "
                 "\"notes\": [\"a\\u00e9\", \"日本\"]}");
  check_document(qwen, json_object_grammar(), "{\n  \"k\": [null, {\"x\": \"tab\\there\"}]\n}");
}

TEST_CASE("token mask: the trie walk equals brute force on stories260K's vocabulary", "[constrain]") {
  const Tokenizer sp = Tokenizer::load(hearth::test::stories_dir());
  const Json schema = Json::parse(R"({"type":"object","properties":{"story":{"type":"string"},
    "len":{"type":"integer"}},"required":["story","len"],"additionalProperties":false})");
  check_document(sp, json_schema_grammar(schema), "{\"story\":\"Once upon a time\",\"len\":4}");
}
