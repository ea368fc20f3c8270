// JSON Schema -> Grammar. See json_schema.h for the supported subset and what the grammar generates.
#include "constrain/json_schema.h"

#include <map>
#include <set>

#include "constrain/matcher.h"

namespace hearth::constrain {

namespace {

using Json = nlohmann::ordered_json;

constexpr int kMaxIndent = 20;
constexpr int kMaxBound = 4096;  // largest minItems/maxItems/minLength/maxLength honoured
constexpr size_t kMaxRules = 200000;  // a request's schema must not cost the server unbounded memory

const std::set<std::string> kAnnotations = {"title",      "description", "$schema",    "$id",
                                            "$comment",   "default",     "examples",   "deprecated",
                                            "readOnly",   "writeOnly",   "$defs",      "definitions"};
const std::set<std::string> kKeywords = {"type",     "properties", "required",  "additionalProperties",
                                         "enum",     "const",      "items",     "minItems",
                                         "maxItems", "minLength",  "maxLength", "anyOf",
                                         "allOf",    "$ref"};

// JSON's own grammar pieces, shared by every schema of one builder.
struct JsonRules {
  uint32_t ws, value, string, escape, number, integer, boolean, null, object, array;
};

// The characters a JSON string may hold unescaped: all but '"', '\\' and controls U+0000..U+001F.
CharClass string_char() { return CharClass({{'"', '"'}, {'\\', '\\'}, {0, 0x1F}}).complement(); }

class SchemaCompiler {
 public:
  SchemaCompiler(GrammarBuilder& b, const Json& root) : b_(b), root_(root) { json_ = json_rules(); }

  uint32_t compile(const Json& s, const std::string& at);
  const JsonRules& json() const { return json_; }

 private:
  JsonRules json_rules();
  uint32_t digits(int min, int max, const std::string& name);
  uint32_t by_type(const Json& s, const std::string& type, const std::string& at);
  uint32_t object(const Json& s, const std::string& at);
  uint32_t array(const Json& s, const std::string& at);
  uint32_t string(const Json& s, const std::string& at);
  uint32_t literals(const std::vector<Json>& values, const std::string& name);
  uint32_t ref(const std::string& pointer, const std::string& at);
  int bound(const Json& s, const char* key, int fallback, const std::string& at) const;
  [[noreturn]] void fail(const std::string& what, const std::string& at) const {
    throw SchemaError("json schema: " + what + " at '" + (at.empty() ? "/" : at) + "'", at);
  }

  GrammarBuilder& b_;
  const Json& root_;
  JsonRules json_{};
  std::map<std::string, uint32_t> refs_;  // JSON pointer -> its rule (recursive $ref)
};

std::string pointer_escape(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

JsonRules SchemaCompiler::json_rules() {
  JsonRules r{};
  // ws ::= "" | " " | "\n" [ \t]{0,20}: one space, or a line break and indentation (pretty-printed JSON).
  r.ws = b_.rule("ws");
  b_.add(r.ws, {});
  b_.add(r.ws, b_.literal(" "));
  b_.add(r.ws, b_.literal("\n") + GrammarBuilder::ref(b_.repeat({b_.chars(CharClass({{' ', ' '}, {'\t', '\t'}}))}, 0,
                                                                  kMaxIndent, "indent")));
  const auto ws = GrammarBuilder::ref(r.ws);

  // string ::= '"' chars '"'; chars ::= plain* more; more ::= "" | escape chars
  r.string = b_.rule("string");
  const uint32_t chars = b_.rule("string-chars"), more = b_.rule("string-more"), esc = b_.rule("escape");
  r.escape = esc;
  const Element hex = b_.chars(CharClass({{'0', '9'}, {'a', 'f'}, {'A', 'F'}}));
  b_.add(esc, b_.literal("\\") + b_.chars(CharClass({{'"', '"'}, {'\\', '\\'}, {'/', '/'}, {'b', 'b'},
                                                      {'f', 'f'}, {'n', 'n'}, {'r', 'r'}, {'t', 't'}})));
  b_.add(esc, b_.literal("\\u") + hex + hex + hex + hex);
  b_.add(chars, Sequence{b_.star(string_char()), GrammarBuilder::ref(more)});
  b_.add(more, {});
  b_.add(more, Sequence{GrammarBuilder::ref(esc), GrammarBuilder::ref(chars)});
  b_.add(r.string, b_.literal("\"") + GrammarBuilder::ref(chars) + b_.literal("\"").front());

  // integer ::= "-"? ("0" | [1-9] [0-9]{0,15}); number adds ("." [0-9]{1,15})? ([eE] [+-]? [0-9]{1,3})?
  r.integer = b_.rule("integer");
  const uint32_t natural = b_.rule("natural");
  b_.add(natural, b_.literal("0"));
  b_.add(natural, Sequence{b_.chars(CharClass({{'1', '9'}})), GrammarBuilder::ref(digits(0, 15, "int-digits"))});
  b_.add(r.integer, {GrammarBuilder::ref(natural)});
  b_.add(r.integer, b_.literal("-") + GrammarBuilder::ref(natural));
  const uint32_t frac = b_.rule("fraction"), exp = b_.rule("exponent"), sign = b_.rule("exp-sign");
  b_.add(frac, {});
  b_.add(frac, b_.literal(".") + GrammarBuilder::ref(digits(1, 15, "frac-digits")));
  b_.add(sign, {});
  b_.add(sign, {b_.chars(CharClass({{'+', '+'}, {'-', '-'}}))});
  b_.add(exp, {});
  b_.add(exp, Sequence{b_.chars(CharClass({{'e', 'e'}, {'E', 'E'}})), GrammarBuilder::ref(sign),
                       GrammarBuilder::ref(digits(1, 3, "exp-digits"))});
  r.number = b_.rule("number");
  b_.add(r.number, Sequence{GrammarBuilder::ref(r.integer), GrammarBuilder::ref(frac), GrammarBuilder::ref(exp)});

  r.boolean = b_.rule("boolean");
  b_.add(r.boolean, b_.literal("true"));
  b_.add(r.boolean, b_.literal("false"));
  r.null = b_.rule("null");
  b_.add(r.null, b_.literal("null"));

  // Any value; object/array of any values.
  r.value = b_.rule("value");
  r.object = b_.rule("object");
  r.array = b_.rule("array");
  for (uint32_t v : {r.object, r.array, r.string, r.number, r.boolean, r.null}) b_.add(r.value, {GrammarBuilder::ref(v)});
  const auto member = b_.rule("member");
  b_.add(member, Sequence{GrammarBuilder::ref(r.string), ws} + b_.literal(":") + ws + GrammarBuilder::ref(r.value));
  const Sequence comma = Sequence{ws} + b_.literal(",") + ws;
  const uint32_t members = b_.repeat(comma + GrammarBuilder::ref(member), 0, -1, "members");
  b_.add(r.object, b_.literal("{") + ws + b_.literal("}"));
  b_.add(r.object, b_.literal("{") + ws + GrammarBuilder::ref(member) + GrammarBuilder::ref(members) + ws + b_.literal("}"));
  const uint32_t elements = b_.repeat(comma + GrammarBuilder::ref(r.value), 0, -1, "elements");
  b_.add(r.array, b_.literal("[") + ws + b_.literal("]"));
  b_.add(r.array, b_.literal("[") + ws + GrammarBuilder::ref(r.value) + GrammarBuilder::ref(elements) + ws + b_.literal("]"));
  return r;
}

uint32_t SchemaCompiler::digits(int min, int max, const std::string& name) {
  return b_.repeat({b_.chars(CharClass({{'0', '9'}}))}, min, max, name);
}

int SchemaCompiler::bound(const Json& s, const char* key, int fallback, const std::string& at) const {
  if (!s.contains(key)) return fallback;
  const Json& v = s[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0) fail(std::string(key) + " must be a non-negative integer", at + "/" + key);
  if (v.get<int64_t>() > kMaxBound) fail(std::string(key) + " above " + std::to_string(kMaxBound) + " is not supported", at + "/" + key);
  return static_cast<int>(v.get<int64_t>());
}

uint32_t SchemaCompiler::compile(const Json& s, const std::string& at) {
  if (b_.rule_count() > kMaxRules) fail("the schema is too large to enforce (its bounds and nesting need over 200,000 grammar rules)", at);
  if (s.is_boolean()) {
    if (!s.get<bool>()) fail("the schema false matches nothing", at);
    return json_.value;
  }
  if (!s.is_object()) fail("a schema must be an object or a boolean", at);
  for (const auto& [key, v] : s.items()) {
    if (!kKeywords.count(key) && !kAnnotations.count(key)) fail("keyword '" + key + "' is not supported", at + "/" + pointer_escape(key));
  }
  if (s.contains("$ref")) {
    if (s.size() > 1) {
      for (const auto& [key, v] : s.items()) {
        if (key != "$ref" && !kAnnotations.count(key)) fail("'" + key + "' beside $ref is not supported", at + "/" + key);
      }
    }
    if (!s["$ref"].is_string()) fail("$ref must be a string", at + "/$ref");
    return ref(s["$ref"].get<std::string>(), at + "/$ref");
  }
  if (s.contains("allOf")) {
    const Json& all = s["allOf"];
    if (!all.is_array() || all.size() != 1 || s.contains("type") || s.contains("anyOf")) {
      fail("allOf is supported only with exactly one schema and no type or anyOf beside it", at + "/allOf");
    }
    return compile(all[0], at + "/allOf/0");
  }
  if (s.contains("const")) return literals({s["const"]}, "const");
  if (s.contains("enum")) {
    if (!s["enum"].is_array() || s["enum"].empty()) fail("enum must be a non-empty array", at + "/enum");
    return literals(std::vector<Json>(s["enum"].begin(), s["enum"].end()), "enum");
  }
  if (s.contains("anyOf")) {
    const Json& any = s["anyOf"];
    if (!any.is_array() || any.empty()) fail("anyOf must be a non-empty array", at + "/anyOf");
    if (s.contains("type")) fail("type beside anyOf is not supported (put it in each branch)", at + "/type");
    const uint32_t r = b_.rule("any-of");
    for (size_t i = 0; i < any.size(); ++i) b_.add(r, {GrammarBuilder::ref(compile(any[i], at + "/anyOf/" + std::to_string(i)))});
    return r;
  }
  if (!s.contains("type")) {
    for (const char* k : {"properties", "required", "additionalProperties"}) {
      if (s.contains(k)) return object(s, at);
    }
    if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) return array(s, at);
    if (s.contains("minLength") || s.contains("maxLength")) return string(s, at);
    return json_.value;
  }
  const Json& type = s["type"];
  if (type.is_string()) return by_type(s, type.get<std::string>(), at + "/type");
  if (!type.is_array() || type.empty()) fail("type must be a string or a non-empty array of strings", at + "/type");
  const uint32_t r = b_.rule("types");
  for (size_t i = 0; i < type.size(); ++i) {
    if (!type[i].is_string()) fail("type must be a string or a non-empty array of strings", at + "/type/" + std::to_string(i));
    b_.add(r, {GrammarBuilder::ref(by_type(s, type[i].get<std::string>(), at + "/type/" + std::to_string(i)))});
  }
  return r;
}

uint32_t SchemaCompiler::by_type(const Json& s, const std::string& type, const std::string& at) {
  const std::string parent = at.substr(0, at.rfind("/type"));
  if (type == "object") return object(s, parent);
  if (type == "array") return array(s, parent);
  if (type == "string") return string(s, parent);
  if (type == "number") return json_.number;
  if (type == "integer") return json_.integer;
  if (type == "boolean") return json_.boolean;
  if (type == "null") return json_.null;
  fail("unknown type '" + type + "'; expected object, array, string, number, integer, boolean or null", at);
}

uint32_t SchemaCompiler::literals(const std::vector<Json>& values, const std::string& name) {
  const uint32_t r = b_.rule(name);
  for (const Json& v : values) b_.add(r, b_.literal(v.dump()));
  return r;
}

uint32_t SchemaCompiler::ref(const std::string& pointer, const std::string& at) {
  if (pointer.empty() || pointer[0] != '#') fail("only local references (#...) are supported, got '" + pointer + "'", at);
  if (auto it = refs_.find(pointer); it != refs_.end()) return it->second;
  const Json* target = &root_;
  if (pointer.size() > 1) {
    try {
      target = &root_.at(Json::json_pointer(pointer.substr(1)));
    } catch (const std::exception&) {
      fail("reference '" + pointer + "' points at nothing", at);
    }
  }
  // The rule exists before its body is compiled, so a recursive reference finds it.
  const uint32_t r = b_.rule("ref");
  refs_[pointer] = r;
  b_.add(r, {GrammarBuilder::ref(compile(*target, pointer.substr(1)))});
  return r;
}

uint32_t SchemaCompiler::string(const Json& s, const std::string& at) {
  const int min = bound(s, "minLength", 0, at), max = bound(s, "maxLength", -1, at);
  if (min == 0 && max < 0) return json_.string;
  if (max >= 0 && max < min) fail("maxLength is below minLength", at + "/maxLength");
  // One character: plain or an escape (each counts as one, as JSON Schema counts code points).
  const uint32_t ch = b_.rule("string-char");
  b_.add(ch, {b_.chars(string_char())});
  b_.add(ch, {GrammarBuilder::ref(json_.escape)});
  const uint32_t body = b_.repeat({GrammarBuilder::ref(ch)}, min, max, "string-body");
  const uint32_t r = b_.rule("string");
  b_.add(r, b_.literal("\"") + GrammarBuilder::ref(body) + b_.literal("\""));
  return r;
}

uint32_t SchemaCompiler::array(const Json& s, const std::string& at) {
  const int min = bound(s, "minItems", 0, at), max = bound(s, "maxItems", -1, at);
  if (max >= 0 && max < min) fail("maxItems is below minItems", at + "/maxItems");
  const uint32_t item = s.contains("items") ? compile(s["items"], at + "/items") : json_.value;
  const auto ws = GrammarBuilder::ref(json_.ws);
  const Sequence next = Sequence{ws} + b_.literal(",") + ws + GrammarBuilder::ref(item);
  const uint32_t r = b_.rule("array");
  if (min == 0) b_.add(r, b_.literal("[") + ws + b_.literal("]"));
  if (max != 0) {
    const uint32_t rest = b_.repeat(next, std::max(min - 1, 0), max < 0 ? -1 : max - 1, "items");
    b_.add(r, b_.literal("[") + ws + GrammarBuilder::ref(item) + GrammarBuilder::ref(rest) + ws + b_.literal("]"));
  }
  return r;
}

uint32_t SchemaCompiler::object(const Json& s, const std::string& at) {
  const Json empty = Json::object();
  const Json& props = s.contains("properties") ? s["properties"] : empty;
  if (!props.is_object()) fail("properties must be an object", at + "/properties");
  std::vector<std::pair<std::string, const Json*>> list;  // in schema order
  for (const auto& [name, sub] : props.items()) list.emplace_back(name, &sub);
  std::set<std::string> required;
  if (s.contains("required")) {
    if (!s["required"].is_array()) fail("required must be an array of strings", at + "/required");
    for (const Json& n : s["required"]) {
      if (!n.is_string()) fail("required must be an array of strings", at + "/required");
      required.insert(n.get<std::string>());
      if (!props.contains(n.get<std::string>())) list.emplace_back(n.get<std::string>(), &empty);
    }
  }
  const Json additional = s.value("additionalProperties", Json(true));
  if (!additional.is_boolean() && !additional.is_object()) fail("additionalProperties must be a boolean or a schema", at + "/additionalProperties");
  const auto ws = GrammarBuilder::ref(json_.ws);
  if (list.empty() && !(additional.is_boolean() && !additional.get<bool>())) {
    if (additional.is_boolean()) return json_.object;
    // A map: any keys, every value against the schema.
    const uint32_t value = compile(additional, at + "/additionalProperties");
    const Sequence member = Sequence{GrammarBuilder::ref(json_.string), ws} + b_.literal(":") + ws + GrammarBuilder::ref(value);
    const uint32_t more = b_.repeat(Sequence{ws} + b_.literal(",") + ws + member, 0, -1, "map-members");
    const uint32_t r = b_.rule("map");
    b_.add(r, b_.literal("{") + ws + b_.literal("}"));
    b_.add(r, b_.literal("{") + ws + member + GrammarBuilder::ref(more) + ws + b_.literal("}"));
    return r;
  }
  if (additional.is_object()) compile(additional, at + "/additionalProperties");  // refused keywords still refused
  // tail[k][first]: properties k.. with `first` meaning no property was written yet (no comma before).
  std::vector<Sequence> members;
  for (const auto& [name, sub] : list) {
    const uint32_t value = compile(*sub, at + "/properties/" + pointer_escape(name));
    members.push_back(b_.literal(Json(name).dump()) + ws + b_.literal(":") + ws + GrammarBuilder::ref(value));
  }
  const Sequence comma = Sequence{ws} + b_.literal(",") + ws;
  std::vector<uint32_t> after_first(list.size() + 1), after_more(list.size() + 1);
  after_first[list.size()] = b_.rule("props-end");
  after_more[list.size()] = after_first[list.size()];
  b_.add(after_first[list.size()], {});
  for (size_t k = list.size(); k-- > 0;) {
    after_first[k] = b_.rule("props");
    after_more[k] = b_.rule("props");
    b_.add(after_first[k], members[k] + GrammarBuilder::ref(after_more[k + 1]));
    b_.add(after_more[k], comma + members[k] + GrammarBuilder::ref(after_more[k + 1]));
    if (!required.count(list[k].first)) {
      b_.add(after_first[k], {GrammarBuilder::ref(after_first[k + 1])});
      b_.add(after_more[k], {GrammarBuilder::ref(after_more[k + 1])});
    }
  }
  const uint32_t r = b_.rule("object");
  b_.add(r, b_.literal("{") + ws + GrammarBuilder::ref(after_first[0]) + ws + b_.literal("}"));
  return r;
}

}  // namespace

uint32_t json_schema_rule(GrammarBuilder& builder, const nlohmann::ordered_json& schema) {
  SchemaCompiler c(builder, schema);
  return c.compile(schema, "");
}

Grammar json_schema_grammar(const nlohmann::ordered_json& schema) {
  GrammarBuilder b;
  const uint32_t root = b.rule("root");
  SchemaCompiler c(b, schema);
  b.add(root, {GrammarBuilder::ref(c.json().ws), GrammarBuilder::ref(c.compile(schema, ""))});
  Grammar g = b.build(root);
  try {
    Matcher(g).start();  // refuse at once what could not even begin (StackSet::kMaxStacks)
  } catch (const Error& e) {
    throw SchemaError(std::string("json schema: ") + e.what(), "/");
  }
  return g;
}

Grammar json_object_grammar() {
  GrammarBuilder b;
  const uint32_t root = b.rule("root");
  SchemaCompiler c(b, nlohmann::ordered_json::object());
  b.add(root, {GrammarBuilder::ref(c.json().ws), GrammarBuilder::ref(c.json().object)});
  return b.build(root);
}

}  // namespace hearth::constrain
