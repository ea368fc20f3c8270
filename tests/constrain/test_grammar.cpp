// Grammars, the matcher and JSON Schema compilation: texts accepted or refused, checked against what the JSON
// specification (RFC 8259) and the schemas say, derived by hand for each case.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "constrain/json_schema.h"
#include "constrain/matcher.h"

using namespace hearth::constrain;
using Json = nlohmann::ordered_json;

namespace {

// 1: a complete match; 0: a prefix of one; -1: dead.
int run(const Grammar& g, const std::string& text) {
  Matcher m(g);
  MatchState s = m.start();
  if (!m.advance(s, text)) return -1;
  return Matcher::accepting(s) ? 1 : 0;
}

int schema_run(const std::string& schema, const std::string& text) {
  return run(json_schema_grammar(Json::parse(schema)), text);
}

}  // namespace

TEST_CASE("grammar: literals, alternatives, stars and repeats match as written", "[constrain]") {
  GrammarBuilder b;
  const uint32_t root = b.rule("root");
  const uint32_t digits = b.repeat({b.chars(CharClass({{'0', '9'}}))}, 1, 3, "d");
  b.add(root, b.literal("ab") + GrammarBuilder::ref(digits));
  b.add(root, b.literal("x") + b.star(CharClass({{'a', 'z'}})) + b.literal("!").front());
  const Grammar g = b.build(root);
  CHECK(run(g, "ab") == 0);
  CHECK(run(g, "ab1") == 1);
  CHECK(run(g, "ab123") == 1);
  CHECK(run(g, "ab1234") == -1);
  CHECK(run(g, "ac") == -1);
  CHECK(run(g, "x!") == 1);
  CHECK(run(g, "xhello!") == 1);
  CHECK(run(g, "xhello") == 0);
  CHECK(run(g, "xHello!") == -1);
  CHECK(run(g, "xhello!!") == -1);
}

TEST_CASE("grammar: code points split across bytes are held until complete", "[constrain]") {
  GrammarBuilder b;
  const uint32_t root = b.rule("root");
  b.add(root, b.literal("é€😀"));  // 2, 3 and 4 bytes
  const Grammar g = b.build(root);
  const std::string text = "é€😀";
  for (size_t n = 0; n < text.size(); ++n) CHECK(run(g, text.substr(0, n)) == 0);
  CHECK(run(g, text) == 1);
  CHECK(run(g, "\xC3\xAA") == -1);        // ê, same lead byte as é
  CHECK(run(g, "\xC3") == 0);             // could still become é
  CHECK(run(g, "\xC4") == -1);            // no code point starting so is allowed
  CHECK(run(g, "\xC3\x41") == -1);        // not a continuation byte
  // Only well-formed UTF-8: an overlong '{' (F0 80 81 BB, C1 BB) or a surrogate (ED A0 80) is no code point.
  GrammarBuilder b2;
  const uint32_t r2 = b2.rule("root");
  b2.add(r2, {b2.star(CharClass({{0, 0x10FFFF}}))});
  const Grammar any = b2.build(r2);
  CHECK(run(any, "{\xF0\x9F\xA6\x99") == 1);
  CHECK(run(any, "\xF0\x80") == -1);
  CHECK(run(any, "\xF0\x80\x81\xBB") == -1);
  CHECK(run(any, "\xC1\xBB") == -1);
  CHECK(run(any, "\xED\xA0") == -1);
  CHECK(run(any, "\xF4\x90") == -1);  // past U+10FFFF
}

TEST_CASE("grammar: left recursion and empty rules are refused at build", "[constrain]") {
  GrammarBuilder b;
  const uint32_t root = b.rule("root");
  b.add(root, Sequence{GrammarBuilder::ref(root)} + b.literal("a"));
  CHECK_THROWS_WITH(b.build(root), Catch::Contains("left-recursive"));
  GrammarBuilder b2;
  const uint32_t r2 = b2.rule("root");
  const uint32_t empty = b2.rule("nothing");
  b2.add(r2, {GrammarBuilder::ref(empty)});
  CHECK_THROWS_WITH(b2.build(r2), Catch::Contains("'nothing' has no alternative"));
}

TEST_CASE("json_object grammar: RFC 8259 objects, nothing else", "[constrain]") {
  const Grammar g = json_object_grammar();
  for (const char* ok : {"{}", "{ }", R"({"a":1})", R"({"a": [1, 2.5, -3e+2, true, false, null, "x"]})",
                         R"({"k":{"n":{"m":[]}}})", R"({"s":"a\"b\\c\/\b\f\n\r\t\u00e9 €"})", "{\n  \"a\": 0\n}"}) {
    INFO(ok);
    CHECK(run(g, ok) == 1);
  }
  for (const char* bad : {"[]", "1", R"({"a":01})", R"({"a":1,})", R"({a:1})", R"({"a":.5})", R"({"a":1.})",
                          "{\"a\":\"\x01\"}", R"({"a":"\x"})", R"({"a":tru})", R"({'a':1})", R"({"a":1}})"}) {
    INFO(bad);
    CHECK(run(g, bad) == -1);
  }
  CHECK(run(g, R"({"a":1)") == 0);
  CHECK(run(g, "{\n" + std::string(20, ' ') + "}") == 1);
  CHECK(run(g, "{\n" + std::string(21, ' ') + "}") == -1);  // at most 20 characters of indentation
  CHECK(run(g, "{  }") == -1);                                // one space, or a line break
  CHECK(run(g, "{\n\n}") == -1);
}

TEST_CASE("json schema: objects keep the schema's property order, optional ones may be left out", "[constrain]") {
  const std::string schema = R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
    "tags":{"type":"array","items":{"type":"string"}}},"required":["name","tags"],"additionalProperties":false})";
  CHECK(schema_run(schema, R"({"name":"Ann","age":31,"tags":["a"]})") == 1);
  CHECK(schema_run(schema, R"({"name":"Ann","tags":[]})") == 1);
  CHECK(schema_run(schema, R"({ "name" : "Ann" , "tags" : [ ] })") == 1);
  CHECK(schema_run(schema, R"({"name":"Ann"})") == -1);            // tags required
  CHECK(schema_run(schema, R"({"age":3,"name":"Ann","tags":[]})") == -1);  // order
  CHECK(schema_run(schema, R"({"name":"Ann","age":3.5,"tags":[]})") == -1);  // integer
  CHECK(schema_run(schema, R"({"name":"Ann","tags":[],"x":1})") == -1);     // no extra property
  CHECK(schema_run(schema, R"({"name":1,"tags":[]})") == -1);
}

TEST_CASE("json schema: enum, const, anyOf, type lists, nullable through anyOf", "[constrain]") {
  CHECK(schema_run(R"({"enum":["red","green",3,null]})", R"("green")") == 1);
  CHECK(schema_run(R"({"enum":["red","green",3,null]})", "3") == 1);
  CHECK(schema_run(R"({"enum":["red","green",3,null]})", "null") == 1);
  CHECK(schema_run(R"({"enum":["red","green",3,null]})", R"("blue")") == -1);
  CHECK(schema_run(R"({"const":{"a":[1,"é"]}})", R"({"a":[1,"é"]})") == 1);
  CHECK(schema_run(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]})", "42") == 1);
  CHECK(schema_run(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]})", R"("ab")") == 1);
  CHECK(schema_run(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]})", R"("abc")") == -1);
  CHECK(schema_run(R"({"type":["string","null"]})", "null") == 1);
  CHECK(schema_run(R"({"type":["string","null"]})", "0") == -1);
  CHECK(schema_run(R"({"type":"boolean"})", "true") == 1);
  CHECK(schema_run(R"({"type":"number"})", "-0.5e10") == 1);
  CHECK(schema_run(R"({"type":"integer"})", "-0") == 1);
  CHECK(schema_run(R"({"type":"integer"})", "00") == -1);
}

TEST_CASE("json schema: lengths and item counts are bounds", "[constrain]") {
  const std::string s = R"({"type":"string","minLength":2,"maxLength":3})";
  CHECK(schema_run(s, R"("a")") == -1);
  CHECK(schema_run(s, R"("ab")") == 1);
  CHECK(schema_run(s, R"("a\nc")") == 1);  // an escape is one character
  CHECK(schema_run(s, R"("abcd")") == -1);
  CHECK(schema_run(s, R"("日本語")") == 1);  // code points, not bytes
  const std::string a = R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":2})";
  CHECK(schema_run(a, "[]") == -1);
  CHECK(schema_run(a, "[1]") == 1);
  CHECK(schema_run(a, "[1, 2]") == 1);
  CHECK(schema_run(a, "[1,2,3]") == -1);
}

TEST_CASE("json schema: $ref into $defs, also recursive", "[constrain]") {
  const std::string tree = R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{
    "v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["v"],
    "additionalProperties":false}}})";
  CHECK(schema_run(tree, R"({"v":1})") == 1);
  CHECK(schema_run(tree, R"({"v":1,"kids":[{"v":2,"kids":[{"v":3}]},{"v":4}]})") == 1);
  CHECK(schema_run(tree, R"({"v":1,"kids":[{"kids":[]}]})") == -1);
  CHECK(schema_run(R"({"type":"object","properties":{"self":{"$ref":"#"}},"additionalProperties":false})",
                   R"({"self":{"self":{}}})") == 1);
}

TEST_CASE("json schema: keywords that cannot be enforced are refused, naming them", "[constrain]") {
  auto where = [](const std::string& schema) {
    try {
      json_schema_grammar(Json::parse(schema));
    } catch (const SchemaError& e) {
      return e.where;
    }
    return std::string("(accepted)");
  };
  CHECK(where(R"({"type":"object","properties":{"age":{"type":"integer","minimum":0}}})") == "/properties/age/minimum");
  CHECK(where(R"({"type":"string","pattern":"^a"})") == "/pattern");
  CHECK(where(R"({"oneOf":[{"type":"string"}]})") == "/oneOf");
  CHECK(where(R"({"type":"strin"})") == "/type");
  CHECK(where(R"({"$ref":"#/$defs/missing"})") == "/$ref");
  CHECK(where(R"({"$ref":"https://example.com/s.json"})") == "/$ref");
  CHECK(where(R"({"type":"string","maxLength":100000})") == "/maxLength");
  CHECK(where(R"({"title":"T","description":"d","type":"object","properties":{}})") == "(accepted)");
  // Size: each bound costs rules; a schema that would need unbounded memory is refused, not built.
  std::string big = R"({"type":"object","properties":{)";
  for (int i = 0; i < 80; ++i) big += (i ? "," : "") + fmt::format(R"("p{}":{{"type":"string","maxLength":4000}})", i);
  CHECK(where(big + "}}").rfind("/properties/p", 0) == 0);
  std::string ambiguous = R"({"anyOf":[)";
  for (int i = 0; i < 5000; ++i) ambiguous += (i ? "," : "") + fmt::format(R"({{"const":"{}"}})", i);
  CHECK(where(ambiguous + "]}") == "/");
  CHECK_THROWS_WITH(json_schema_grammar(Json::parse(R"({"type":"string","format":"date"})")),
                    Catch::Contains("keyword 'format' is not supported"));
}
