// Malformed and unsupported tokenizer files: IoError for missing files, FormatError (exit code 4) naming
// the file, the field and the problem for everything else.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_paths.h"
#include "tokenizer/bpe.h"
#include "tokenizer/tokenizer.h"

namespace tok = hearth::tokenizer;
using nlohmann::json;

namespace {

json minimal() {
  return {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", json::array({"a b"})}}}};
}

// The FormatError message from_json gives for `j` ("" when it loads).
std::string format_error(const json& j) {
  try {
    tok::Tokenizer::from_json(j, json(), "bad/tokenizer.json");
  } catch (const hearth::FormatError& e) {
    CHECK(e.exit_code() == hearth::ExitCode::kFormat);
    return e.what();
  }
  return "";
}

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("hearth_test_tokenizer_" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("the minimal tokenizer.json loads", "[tokenizer]") {
  const auto t = tok::Tokenizer::from_json(minimal(), json(), "min");
  CHECK(t.encode("abba") == std::vector<tok::TokenId>{2, 1, 0});
}

TEST_CASE("a BPE model built from tables tokenizes as the same model read from JSON", "[tokenizer]") {
  // Id 3 is not in the vocabulary (an added token in GGUF's terms); merges: a b, b a, ab a.
  const std::vector<std::string> tokens = {"a", "b", "ab", "<x>", "ba", "aba"};
  const std::vector<bool> in_vocab = {true, true, true, false, true, true};
  const std::vector<tok::BpeMerge> merges = {{0, 1, 2}, {1, 0, 4}, {2, 0, 5}};
  const json options = {{"type", "BPE"}};
  const json from_json = {{"model",
                           {{"type", "BPE"},
                            {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}, {"ba", 4}, {"aba", 5}}},
                            {"merges", json::array({"a b", "b a", "ab a"})}}}};
  const tok::Where where{"tables", "model"};
  const auto a = tok::Tokenizer::from_json(from_json, json(), "json");
  const auto b = tok::Tokenizer::from_json({{"model", options}},
                                           std::make_unique<tok::BpeModel>(options, tokens, in_vocab, merges, where),
                                           json(), "tables");
  for (const char* text : {"abab", "baba", "aaba", "bbab", "abaaba", "b"}) {
    INFO(text);
    CHECK(b.encode(text) == a.encode(text));
  }
  CHECK(b.encode("abab") == std::vector<tok::TokenId>{2, 2});  // both "a b" (rank 0) before "ab a" (rank 2)
  CHECK(b.encode("abaa") == std::vector<tok::TokenId>{5, 0});
  CHECK_FALSE(b.token_to_id("<x>"));
  CHECK(b.merges() == a.merges());
  // The tables are given once, and name only ids in the vocabulary.
  CHECK_THROWS_WITH(tok::BpeModel(from_json["model"], tokens, in_vocab, merges, where),
                    Catch::Contains("tables: model.vocab") && Catch::Contains("given twice"));
  CHECK_THROWS_WITH(tok::BpeModel(options, tokens, in_vocab, {{0, 1, 2}, {0, 3, 5}}, where),
                    Catch::Contains("model.merges[1]") && Catch::Contains("not in the vocabulary") &&
                        Catch::Contains("got 3"));
  CHECK_THROWS_WITH(tok::BpeModel(options, tokens, in_vocab, {{0, 1, 9}}, where),
                    Catch::Contains("model.merges[0]") && Catch::Contains("got 9"));
}

TEST_CASE("missing files are IoErrors", "[tokenizer]") {
  const auto dir = temp_dir("missing");
  try {
    tok::Tokenizer::load(dir);
    FAIL("no exception");
  } catch (const hearth::IoError& e) {
    CHECK(e.exit_code() == hearth::ExitCode::kIo);
    CHECK_THAT(e.what(), Catch::Contains("tokenizer.json"));
  }
}

TEST_CASE("a file that is not JSON is a FormatError naming it", "[tokenizer]") {
  const auto dir = temp_dir("notjson");
  std::ofstream(dir / "tokenizer.json") << "{\"model\": ";
  try {
    tok::Tokenizer::load(dir);
    FAIL("no exception");
  } catch (const hearth::FormatError& e) {
    CHECK_THAT(e.what(), Catch::Contains((dir / "tokenizer.json").string()));
    CHECK_THAT(e.what(), Catch::Contains("not valid JSON"));
  }
  // So is JSON nested deeper than io::kJsonMaxDepth (copying it overflowed the stack).
  std::ofstream(dir / "tokenizer.json", std::ios::trunc)
      << R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "x": )" << std::string(300000, '[')
      << std::string(300000, ']') << "}";
  CHECK_THROWS_WITH(tok::Tokenizer::load(dir), Catch::Contains("nested deeper than 256"));
  // A number beyond double's range is a FormatError too (nlohmann's out_of_range escaped: exit 1).
  std::ofstream(dir / "tokenizer.json", std::ios::trunc) << R"({"model": {"type": "BPE", "dropout": 1e400}})";
  CHECK_THROWS_AS(tok::Tokenizer::load(dir), hearth::FormatError);
}

TEST_CASE("malformed or unsupported components are FormatErrors naming the field", "[tokenizer]") {
  json j = minimal();
  j.erase("model");
  CHECK_THAT(format_error(j), Catch::Contains("bad/tokenizer.json: model: missing"));

  j = minimal();
  j["model"]["type"] = "WordPiece";
  CHECK(format_error(j) == "bad/tokenizer.json: model.type: unsupported model; expected \"BPE\", got \"WordPiece\"");

  j = minimal();
  j["model"]["type"] = "Unigram";
  CHECK_THAT(format_error(j), Catch::Contains("got \"Unigram\""));

  j = minimal();
  j["model"]["merges"] = json::array({"a b", "a zz"});
  CHECK(format_error(j) ==
        "bad/tokenizer.json: model.merges[1]: merge token not in the vocabulary; "
        "expected tokens of model.vocab, got \"zz\"");

  j = minimal();
  j["model"]["merges"] = json::array({"a b c"});
  CHECK_THAT(format_error(j), Catch::Contains("model.merges[0]: bad merge"));

  j = minimal();
  j["model"]["merges"] = json::array({json::array({"a"})});
  CHECK_THAT(format_error(j), Catch::Contains("model.merges[0]: bad merge"));

  j = minimal();
  j["model"]["vocab"]["x"] = "seven";
  CHECK_THAT(format_error(j), Catch::Contains("model.vocab.x: bad token id"));

  j = minimal();
  j["model"]["unk_token"] = "<unk>";
  CHECK_THAT(format_error(j), Catch::Contains("model.unk_token: not in the vocabulary"));

  j = minimal();
  j["model"]["dropout"] = 0.1;
  CHECK_THAT(format_error(j), Catch::Contains("model.dropout: BPE dropout is not supported"));

  j = minimal();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "BertPreTokenizer"}}}}};
  CHECK_THAT(format_error(j), Catch::Contains("pre_tokenizer.pretokenizers[0].type: unsupported pre_tokenizer") &&
                                  Catch::Contains("got \"BertPreTokenizer\""));

  j = minimal();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  CHECK_THAT(format_error(j), Catch::Contains("pre_tokenizer.pattern.Regex: bad regex"));

  j = minimal();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
  CHECK_THAT(format_error(j), Catch::Contains("pre_tokenizer.behavior: unknown split behavior"));

  j = minimal();
  j["normalizer"] = {{"type", "BertNormalizer"}};
  CHECK_THAT(format_error(j),
             Catch::Contains("normalizer.type: unsupported normalizer") && Catch::Contains("got \"BertNormalizer\""));

  j = minimal();
  j["decoder"] = {{"type", "WordPiece"}};
  CHECK_THAT(format_error(j), Catch::Contains("decoder.type: unsupported decoder"));

  j = minimal();
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", {{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}}}};
  CHECK_THAT(format_error(j), Catch::Contains("post_processor.special_tokens: template names an undefined"));

  // A post-processor adding an id that is no token: encode() gave ids beyond vocab_size(), which no embedding row
  // has (found by fuzz_tokenizer). minimal()'s ids are 0..2.
  for (const json& ids : {json::array({3}), json::array({-1}), json::array({int64_t(1) << 32})}) {
    j = minimal();
    j["post_processor"] = {{"type", "TemplateProcessing"},
                           {"single", {{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}}},
                           {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", ids}, {"tokens", {"<s>"}}}}}}};
    INFO(ids.dump());
    CHECK_THAT(format_error(j), Catch::Contains("bad/tokenizer.json: post_processor"));
  }
  j = minimal();
  j["post_processor"] = {{"type", "BertProcessing"}, {"cls", {"[CLS]", 7}}, {"sep", {"[SEP]", 2}}};
  CHECK_THAT(format_error(j),
             Catch::Contains("post_processor: adds an id that is no token") && Catch::Contains("got 7"));

  j = minimal();
  j["added_tokens"] = {{{"content", "<x>"}}};
  CHECK_THAT(format_error(j), Catch::Contains("added_tokens[0].id: missing"));

  j = minimal();
  j["normalizer"] = {{"kind", "NFC"}};
  CHECK_THAT(format_error(j), Catch::Contains("normalizer.type: missing component type"));
}

TEST_CASE("decoding an unknown id is a FormatError", "[tokenizer]") {
  const auto t = tok::Tokenizer::from_json(minimal(), json(), "min");
  CHECK_THROWS_AS(t.decode({0, 99}), hearth::FormatError);
  CHECK_THROWS_AS(t.decode({-1}), hearth::FormatError);
  tok::StreamDecoder stream(t);
  CHECK_THROWS_AS(stream.push(1234), hearth::FormatError);
}

TEST_CASE("a pre-tokenizer regex that backtracks catastrophically is a FormatError naming it, quickly", "[tokenizer]") {
  // (a+)+$ on "aaaa…b" tries every way to split the a's: PCRE2 gives up at hearth's match limit. It was an
  // internal error (exit 1, "PCRE2 error -47"); it is the tokenizer file's fault, so exit 4 naming the field.
  json j = minimal();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a+)+$"}}}, {"behavior", "Isolated"}};
  const auto t = tok::Tokenizer::from_json(j, json(), "bad/tokenizer.json");
  try {
    t.encode(std::string(40, 'a') + "b");
    FAIL("expected a FormatError");
  } catch (const hearth::FormatError& e) {
    CHECK(e.exit_code() == hearth::ExitCode::kFormat);
    CHECK_THAT(std::string(e.what()), Catch::Contains("bad/tokenizer.json") &&
                                          Catch::Contains("pre_tokenizer.pattern.Regex") && Catch::Contains("(a+)+$") &&
                                          Catch::Contains("backtracking"));
  }
  CHECK(t.encode("abba").size() > 0);  // ordinary text still encodes
}
