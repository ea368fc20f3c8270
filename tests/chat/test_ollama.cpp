// Ollama Modelfiles (lib/chat/ollama.h): the Modelfile text read back by a parser written here from Ollama's
// docs/modelfile.md, and the TEMPLATE rendered by a renderer written here for the subset of Go text/template
// the templates use, compared byte for byte with hearth's Jinja rendering of the models' own chat templates.
//
// What this file assumes of Ollama (docs/template.md, docs/modelfile.md, and the server's chat handler):
// - A Modelfile SYSTEM is prepended as a system message when the request's first message is not a system
//   message; no MESSAGE instructions are written.
// - The template sees .System (the contents of all system messages joined by "\n\n") and .Messages (every
//   message, system ones included, consecutive messages of the same role merged by "\n\n"), each with .Role
//   and .Content; .Prompt and .Response are empty when .Messages is used.
// - Go's text/template: `{{- ` trims all white space (space, tab, CR, LF) before the action, ` -}}` after it;
//   `if` is false for false, 0, "", and empty lists; `and` returns its first false argument or its last.
// - Modelfile: one instruction a line (names case-insensitive), `#` comment lines, values bare, in "...", or
//   in """...""" over several lines; a quoted value ends at the first line end where the line ends with the
//   closing quotes.
// The Jinja side is what transformers renders with add_generation_prompt=true, minus the leading BOS text,
// which llama.cpp adds as a token.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "chat/chat_template.h"
#include "chat/ollama.h"
#include "io/atomic_file.h"
#include "core/error.h"
#include "test_paths.h"

using hearth::ConfigError;
using hearth::chat::chat_default_system;
using hearth::chat::chat_family_detect;
using hearth::chat::chat_family_name;
using hearth::chat::ChatFamily;
using hearth::chat::ChatTemplate;
using hearth::chat::Modelfile;
using hearth::chat::modelfile_render;
using hearth::chat::ollama_stops;
using hearth::chat::ollama_template;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

std::string fixture(const std::string& name) {
  return hearth::io::file_read(hearth::test::fixtures_dir() / "chat_templates" / name);
}

// ---------------------------------------------------------------------------------------------------------
// A Modelfile parser, from docs/modelfile.md
// ---------------------------------------------------------------------------------------------------------

struct Instruction {
  std::string name;   // lower case: from, parameter, template, system, adapter, license, message
  std::string key;    // PARAMETER's name, MESSAGE's role
  std::string value;  // unquoted
};

bool blank(char c) { return c == ' ' || c == '\t'; }

std::vector<Instruction> modelfile_parse(const std::string& text) {
  static const std::vector<std::string> kNames = {"from",    "parameter", "template", "system",
                                                  "adapter", "license",   "message"};
  std::vector<Instruction> out;
  size_t i = 0, n = text.size();
  auto line_end = [&](size_t p) {
    size_t e = text.find('\n', p);
    return e == std::string::npos ? n : e;
  };
  auto word = [&](auto ok) {
    size_t b = i;
    while (i < n && ok(text[i])) ++i;
    return text.substr(b, i - b);
  };
  auto skip_blanks = [&] {
    if (i >= n || !blank(text[i])) throw std::runtime_error("expected a blank at " + std::to_string(i));
    while (i < n && blank(text[i])) ++i;
  };
  while (i < n) {
    if (blank(text[i]) || text[i] == '\n' || text[i] == '\r') {
      ++i;
      continue;
    }
    if (text[i] == '#') {
      i = line_end(i);
      continue;
    }
    Instruction ins;
    ins.name = word([](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; });
    for (char& c : ins.name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (std::find(kNames.begin(), kNames.end(), ins.name) == kNames.end())
      throw std::runtime_error("unknown instruction '" + ins.name + "'");
    skip_blanks();
    if (ins.name == "parameter" || ins.name == "message") {
      ins.key = word([](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; });
      skip_blanks();
    }
    if (text.compare(i, 3, "\"\"\"") == 0) {
      // Multi-line: up to the first line that ends (blanks aside) with the closing """.
      size_t start = i + 3, p = start;
      for (;;) {
        size_t e = line_end(p), t = e;
        while (t > p && blank(text[t - 1])) --t;
        if (t >= start + 3 && text.compare(t - 3, 3, "\"\"\"") == 0) {
          ins.value = text.substr(start, t - 3 - start);
          i = e;
          break;
        }
        if (e == n) throw std::runtime_error("unterminated \"\"\"");
        p = e + 1;
      }
    } else {
      size_t e = line_end(i), t = e;
      while (t > i && blank(text[t - 1])) --t;
      std::string v = text.substr(i, t - i);
      if (!v.empty() && v[0] == '"') {
        if (v.size() < 2 || v.back() != '"') throw std::runtime_error("unterminated quote: " + v);
        v = v.substr(1, v.size() - 2);
      }
      ins.value = v;
      i = e;
    }
    out.push_back(ins);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// A Go text/template renderer for the subset the templates use
// ---------------------------------------------------------------------------------------------------------

struct Expr {
  enum Kind { kField, kVar, kString, kInt, kCall } kind = kField;
  std::string name;               // variable ("$", "$i") or function name
  std::vector<std::string> path;  // field chain after the dot / variable
  std::string text;               // string literal
  long number = 0;
  std::vector<Expr> args;
};

struct GoNode {
  enum Kind { kText, kAction, kIf, kRange } kind = kText;
  std::string text;
  Expr expr;
  std::vector<std::pair<Expr, std::vector<GoNode>>> branches;  // if / else if
  std::vector<GoNode> else_body;
  std::string key_var, value_var;  // range $k, $v :=
  std::vector<GoNode> body;
};

class GoTemplate {
 public:
  explicit GoTemplate(const std::string& src) {
    lex(src);
    size_t pos = 0;
    std::string stop;
    root_ = parse_list(pos, stop);
    if (!stop.empty()) throw std::runtime_error("unexpected {{" + stop + "}}");
  }

  std::string render(const json& data) const {
    std::string out;
    std::map<std::string, json> vars{{"$", data}};
    exec(root_, data, vars, out);
    return out;
  }

 private:
  struct Item {
    bool action;
    std::string text;
  };
  std::vector<Item> items_;
  std::vector<GoNode> root_;

  static bool space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  void lex(const std::string& src) {
    size_t i = 0;
    bool trim_next = false;
    while (i < src.size()) {
      size_t open = src.find("{{", i);
      std::string text = src.substr(i, open == std::string::npos ? std::string::npos : open - i);
      if (trim_next)
        text.erase(0, text.find_first_not_of(" \t\r\n") == std::string::npos ? text.size()
                                                                             : text.find_first_not_of(" \t\r\n"));
      if (open == std::string::npos) {
        items_.push_back({false, text});
        break;
      }
      size_t b = open + 2;
      if (b + 1 < src.size() && src[b] == '-' && space(src[b + 1])) {  // "{{- " trims the text before
        while (!text.empty() && space(text.back())) text.pop_back();
        b += 2;
      }
      items_.push_back({false, text});
      size_t close = src.find("}}", b);
      if (close == std::string::npos) throw std::runtime_error("unclosed action");
      size_t e = close;
      trim_next = e >= b + 2 && src[e - 1] == '-' && space(src[e - 2]);  // " -}}" trims the text after
      if (trim_next) e -= 2;
      items_.push_back({true, src.substr(b, e - b)});
      i = close + 2;
    }
  }

  static std::vector<std::string> tokens(const std::string& s) {
    std::vector<std::string> out;
    size_t i = 0;
    while (i < s.size()) {
      char c = s[i];
      if (space(c)) {
        ++i;
      } else if (c == '(' || c == ')' || c == ',') {
        out.emplace_back(1, c);
        ++i;
      } else if (c == '"') {
        size_t j = i + 1;
        std::string lit = "\"";
        while (j < s.size() && s[j] != '"') {
          if (s[j] == '\\' && j + 1 < s.size()) {
            char e = s[++j];
            lit += e == 'n' ? '\n' : e == 't' ? '\t' : e;
          } else {
            lit += s[j];
          }
          ++j;
        }
        if (j >= s.size()) throw std::runtime_error("unterminated string in action");
        out.push_back(lit);
        i = j + 1;
      } else {
        size_t j = i;
        while (j < s.size() && !space(s[j]) && s[j] != '(' && s[j] != ')' && s[j] != ',') ++j;
        out.push_back(s.substr(i, j - i));
        i = j;
      }
    }
    return out;
  }

  static std::vector<std::string> split_path(const std::string& s, size_t from) {
    std::vector<std::string> path;
    size_t i = from;
    while (i < s.size()) {
      if (s[i] != '.') throw std::runtime_error("bad field chain: " + s);
      size_t j = s.find('.', i + 1);
      std::string part = s.substr(i + 1, j == std::string::npos ? std::string::npos : j - i - 1);
      if (!part.empty()) path.push_back(part);
      i = j == std::string::npos ? s.size() : j;
    }
    return path;
  }

  // operand := field | $var[.field...] | "string" | number | ( command )
  static Expr operand(const std::vector<std::string>& t, size_t& p) {
    if (p >= t.size()) throw std::runtime_error("missing operand");
    const std::string& s = t[p++];
    Expr e;
    if (s == "(") {
      e = command(t, p);
      if (p >= t.size() || t[p] != ")") throw std::runtime_error("missing )");
      ++p;
    } else if (s[0] == '.') {
      e.kind = Expr::kField;
      e.path = split_path(s, 0);
    } else if (s[0] == '$') {
      e.kind = Expr::kVar;
      size_t dot = s.find('.');
      e.name = s.substr(0, dot);
      if (dot != std::string::npos) e.path = split_path(s, dot);
    } else if (s[0] == '"') {
      e.kind = Expr::kString;
      e.text = s.substr(1);
    } else if (std::isdigit(static_cast<unsigned char>(s[0])) || (s[0] == '-' && s.size() > 1)) {
      e.kind = Expr::kInt;
      e.number = std::stol(s);
    } else {
      throw std::runtime_error("unexpected '" + s + "'");
    }
    return e;
  }

  // command := function operand... | operand
  static Expr command(const std::vector<std::string>& t, size_t& p) {
    static const std::vector<std::string> kFuncs = {"eq", "ne", "and", "or", "not", "len", "slice"};
    if (p < t.size() && std::find(kFuncs.begin(), kFuncs.end(), t[p]) != kFuncs.end()) {
      Expr e;
      e.kind = Expr::kCall;
      e.name = t[p++];
      while (p < t.size() && t[p] != ")") e.args.push_back(operand(t, p));
      return e;
    }
    return operand(t, p);
  }

  static Expr full_expr(const std::vector<std::string>& t, size_t p) {
    Expr e = command(t, p);
    if (p != t.size()) throw std::runtime_error("trailing tokens in action");
    return e;
  }

  // Parses nodes until {{else...}} or {{end}}; `stop` gets that action's text ("" at the end of input).
  std::vector<GoNode> parse_list(size_t& pos, std::string& stop) {
    std::vector<GoNode> nodes;
    while (pos < items_.size()) {
      const Item& it = items_[pos++];
      if (!it.action) {
        if (it.text.empty()) continue;
        GoNode text;
        text.text = it.text;
        nodes.push_back(text);
        continue;
      }
      std::vector<std::string> t = tokens(it.text);
      if (t.empty()) throw std::runtime_error("empty action");
      if (t[0] == "end" || t[0] == "else") {
        stop = it.text;
        return nodes;
      }
      GoNode node;
      if (t[0] == "if") {
        node.kind = GoNode::kIf;
        Expr cond = full_expr(t, 1);
        for (;;) {
          std::string s;
          std::vector<GoNode> body = parse_list(pos, s);
          node.branches.emplace_back(cond, body);
          std::vector<std::string> st = tokens(s);
          if (st.empty()) throw std::runtime_error("if without end");
          if (st[0] == "end") break;
          if (st.size() > 1 && st[1] == "if") {  // else if
            cond = full_expr(st, 2);
            continue;
          }
          std::string s2;
          node.else_body = parse_list(pos, s2);
          if (tokens(s2).empty() || tokens(s2)[0] != "end") throw std::runtime_error("else without end");
          break;
        }
      } else if (t[0] == "range") {
        node.kind = GoNode::kRange;
        size_t p = 1;
        auto decl = std::find(t.begin(), t.end(), ":=");
        if (decl != t.end()) {
          std::vector<std::string> names;
          for (; t[p] != ":="; ++p)
            if (t[p] != ",") names.push_back(t[p]);
          ++p;
          if (names.size() == 1) node.value_var = names[0];
          if (names.size() == 2) node.key_var = names[0], node.value_var = names[1];
        }
        node.expr = full_expr(t, p);
        std::string s;
        node.body = parse_list(pos, s);
        if (tokens(s).empty() || tokens(s)[0] != "end") throw std::runtime_error("range without end");
      } else {
        node.kind = GoNode::kAction;
        node.expr = full_expr(t, 0);
      }
      nodes.push_back(node);
    }
    stop.clear();
    return nodes;
  }

  static bool truth(const json& v) {
    if (v.is_null()) return false;
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number()) return v.get<double>() != 0;
    if (v.is_string()) return !v.get<std::string>().empty();
    return !v.empty();
  }

  static json walk(json v, const std::vector<std::string>& path) {
    for (const std::string& f : path) {
      if (!v.is_object() || !v.contains(f)) throw std::runtime_error("no field ." + f);
      v = v[f];
    }
    return v;
  }

  static json eval(const Expr& e, const json& dot, const std::map<std::string, json>& vars) {
    switch (e.kind) {
      case Expr::kField: return walk(dot, e.path);
      case Expr::kVar: {
        auto it = vars.find(e.name);
        if (it == vars.end()) throw std::runtime_error("undefined variable " + e.name);
        return walk(it->second, e.path);
      }
      case Expr::kString: return e.text;
      case Expr::kInt: return e.number;
      case Expr::kCall: break;
    }
    std::vector<json> a;
    for (const Expr& arg : e.args) a.push_back(eval(arg, dot, vars));
    auto need = [&](size_t k) {
      if (a.size() < k) throw std::runtime_error(e.name + ": too few arguments");
    };
    if (e.name == "eq" || e.name == "ne") {
      need(2);
      bool eq = false;
      for (size_t k = 1; k < a.size(); ++k) eq = eq || a[0] == a[k];
      return e.name == "eq" ? eq : !eq;
    }
    if (e.name == "and" || e.name == "or") {
      need(1);
      for (const json& v : a)
        if (truth(v) != (e.name == "and")) return v;
      return a.back();
    }
    if (e.name == "not") return need(1), !truth(a[0]);
    if (e.name == "len") return need(1), a[0].is_string() ? a[0].get<std::string>().size() : a[0].size();
    // slice x i: x[i:]
    need(2);
    auto from = a[1].get<size_t>();
    if (!a[0].is_array() || from > a[0].size()) throw std::runtime_error("slice: index out of range");
    return json(std::vector<json>(a[0].begin() + static_cast<long>(from), a[0].end()));
  }

  static std::string print(const json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number()) return v.dump();
    throw std::runtime_error("cannot print " + v.dump());
  }

  static void exec(const std::vector<GoNode>& nodes, const json& dot, std::map<std::string, json> vars,
                   std::string& out) {
    for (const GoNode& n : nodes) {
      switch (n.kind) {
        case GoNode::kText: out += n.text; break;
        case GoNode::kAction: out += print(eval(n.expr, dot, vars)); break;
        case GoNode::kIf: {
          bool taken = false;
          for (const auto& [cond, body] : n.branches)
            if (truth(eval(cond, dot, vars))) {
              exec(body, dot, vars, out);
              taken = true;
              break;
            }
          if (!taken) exec(n.else_body, dot, vars, out);
          break;
        }
        case GoNode::kRange: {
          json list = eval(n.expr, dot, vars);
          if (!list.is_array()) throw std::runtime_error("range over a non-list");
          for (size_t k = 0; k < list.size(); ++k) {
            std::map<std::string, json> inner = vars;
            if (!n.key_var.empty()) inner[n.key_var] = k;
            if (!n.value_var.empty()) inner[n.value_var] = list[k];
            exec(n.body, list[k], inner, out);
          }
          break;
        }
      }
    }
  }
};

// What Ollama hands the template for `messages` under a Modelfile with `system` (see the top of the file).
json ollama_values(const ojson& messages, const std::optional<std::string>& system) {
  ojson msgs = messages;
  if (system && (msgs.empty() || msgs[0]["role"] != "system"))
    msgs.insert(msgs.begin(), ojson{{"role", "system"}, {"content", *system}});
  std::string all_system;
  json collated = json::array();
  for (const auto& m : msgs) {
    std::string role = m["role"], content = m["content"];
    if (role == "system") all_system += (all_system.empty() ? "" : "\n\n") + content;
    if (!collated.empty() && collated.back()["Role"] == role)
      collated.back()["Content"] = collated.back()["Content"].get<std::string>() + "\n\n" + content;
    else collated.push_back({{"Role", role}, {"Content", content}});
  }
  return {{"System", all_system}, {"Messages", collated}, {"Prompt", ""}, {"Response", ""}, {"Tools", nullptr}};
}

struct Family {
  std::string fixture;  // tests/fixtures/chat_templates/<fixture>
  ChatFamily family;
  std::string bos, eos;  // the model's special tokens ("" for none)
};

const std::vector<Family>& families() {
  static const std::vector<Family> f = {
      {"llama3.jinja", ChatFamily::kLlama3, "<|begin_of_text|>", "<|end_of_text|>"},
      // SmolLM2's bos_token is <|im_start|>, which its template does not write as BOS: stripping it would cut
      // the first turn, so none here.
      {"chatml.jinja", ChatFamily::kChatML, "", "<|im_end|>"},
      {"qwen25.jinja", ChatFamily::kChatML, "", "<|im_end|>"},
      {"mistral_v03.jinja", ChatFamily::kMistral, "<s>", "</s>"},
  };
  return f;
}

std::string jinja_prompt(const std::string& source, const ojson& messages, const std::string& bos,
                         const std::string& eos) {
  ojson vars = {{"messages", messages}, {"add_generation_prompt", true}, {"tools", nullptr}, {"documents", nullptr}};
  if (!bos.empty()) vars["bos_token"] = bos;
  if (!eos.empty()) vars["eos_token"] = eos;
  std::string text = ChatTemplate::parse(source, "fixture").render(vars);
  if (!bos.empty() && text.compare(0, bos.size(), bos) == 0) text.erase(0, bos.size());
  return text;
}

ojson msg(const std::string& role, const std::string& content) { return {{"role", role}, {"content", content}}; }

// The conversations every family is checked on. Contents have no leading/trailing white space (Llama 3 and
// Mistral trim them); they hold quotes, a newline and Go template syntax, which must come out verbatim.
std::vector<std::pair<std::string, ojson>> conversations() {
  return {
      {"with system",
       ojson::array({msg("system", "You are terse.\nAnswer in \"one\" line."), msg("user", "Hi {{ .System }}!")})},
      {"multi-turn", ojson::array({msg("user", "What is 2+2?"), msg("assistant", "It is 4."),
                                   msg("user", "And 3+3?\nShow {{- the work -}}.")})},
      {"no system", ojson::array({msg("user", "Hello!")})},
      {"system, multi-turn", ojson::array({msg("system", "Be brief."), msg("user", "Name a color."),
                                           msg("assistant", "Blue."), msg("user", "Another.")})},
  };
}

// The Modelfile hearth would write for a family, read back with the parser above: (TEMPLATE, SYSTEM).
std::pair<std::string, std::optional<std::string>> modelfile_round_trip(const Family& f) {
  Modelfile m;
  m.from = "./model.gguf";
  m.template_text = ollama_template(f.family);
  m.system = chat_default_system(fixture(f.fixture));
  m.stops = ollama_stops(f.family);
  std::pair<std::string, std::optional<std::string>> out;
  for (const Instruction& ins : modelfile_parse(modelfile_render(m))) {
    if (ins.name == "template") out.first = ins.value;
    if (ins.name == "system") out.second = ins.value;
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------

TEST_CASE("ollama: the test's Go template renderer follows Go's trimming and branching", "[ollama]") {
  json data = {
      {"System", "S"},
      {"Messages", json::array({{{"Role", "user"}, {"Content", "u"}}, {{"Role", "assistant"}, {"Content", "a"}}})}};
  // Examples from the text/template documentation's "Text and spaces" section.
  CHECK(GoTemplate("{{23 -}} < {{- 45}}").render(data) == "23<45");
  CHECK(GoTemplate("a \n{{- .System -}}\t\n b").render(data) == "aSb");
  CHECK(GoTemplate("{{-3}}").render(data) == "-3");  // "{{-3" is a number, not a trim marker
  CHECK(GoTemplate("{{ range $i, $m := .Messages }}{{ $i }}{{ .Role }}={{ $m.Content }};{{ end }}").render(data) ==
        "0user=u;1assistant=a;");
  CHECK(GoTemplate("{{ if eq .System \"x\" }}1{{ else if not .System }}2{{ else }}3{{ end }}").render(data) == "3");
  CHECK(GoTemplate("{{ range $i, $_ := .Messages }}{{ len (slice $.Messages $i) }}{{ end }}").render(data) == "21");
  CHECK(GoTemplate("{{ and .System 0 }}|{{ and .System \"y\" }}|{{ or \"\" .System }}").render(data) == "0|y|S");
  CHECK_THROWS(GoTemplate("{{ if .System }}x").render(data));
  CHECK_THROWS(GoTemplate("{{ .Nope }}").render(data));
}

TEST_CASE("ollama: the test's Modelfile parser reads the documented grammar", "[ollama]") {
  std::string text =
      "# a comment\n"
      "from llama3.2\n"
      "PARAMETER temperature 1\n"
      "Parameter stop \"<|eot_id|>\"\n"
      "\n"
      "TEMPLATE \"\"\"{{ if .System }}<|start_header_id|>system<|end_header_id|>\n"
      "\n"
      "{{ .System }}<|eot_id|>{{ end }}\"\"\"\n"
      "SYSTEM \"\"\"Say \"hi\"\"\"\"\n"
      "MESSAGE user Is Toronto in Canada?\n"
      "LICENSE \"\"\"\n"
      "MIT\n"
      "\"\"\"\n";
  std::vector<Instruction> got = modelfile_parse(text);
  REQUIRE(got.size() == 7);
  CHECK((got[0].name == "from" && got[0].value == "llama3.2"));
  CHECK((got[1].name == "parameter" && got[1].key == "temperature" && got[1].value == "1"));
  CHECK((got[2].name == "parameter" && got[2].key == "stop" && got[2].value == "<|eot_id|>"));
  CHECK(got[3].value ==
        "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}");
  CHECK((got[4].name == "system" && got[4].value == "Say \"hi\""));
  CHECK((got[5].name == "message" && got[5].key == "user" && got[5].value == "Is Toronto in Canada?"));
  CHECK((got[6].name == "license" && got[6].value == "\nMIT\n"));
  CHECK_THROWS(modelfile_parse("FROM x\nTEMPLATE \"\"\"never closed\n"));
  CHECK_THROWS(modelfile_parse("RUN x\n"));
}

TEST_CASE("ollama: each family's TEMPLATE renders the model's own chat template", "[ollama]") {
  for (const Family& f : families()) {
    std::string source = fixture(f.fixture);
    auto [template_text, system] = modelfile_round_trip(f);
    REQUIRE(template_text == ollama_template(f.family));
    GoTemplate go(template_text);
    for (const auto& [name, messages] : conversations()) {
      INFO(f.fixture << " / " << name);
      std::string expected = jinja_prompt(source, messages, f.bos, f.eos);
      CHECK(go.render(ollama_values(messages, system)) == expected);
    }
  }
}

TEST_CASE("ollama: the comparison tells the families apart", "[ollama]") {
  // Each family's TEMPLATE against every other family's chat template: no conversation may match, or the
  // check above would prove nothing.
  for (const Family& f : families())
    for (const Family& g : families()) {
      if (f.family == g.family) continue;
      GoTemplate go(ollama_template(g.family));
      for (const auto& [name, messages] : conversations()) {
        INFO(f.fixture << " vs " << chat_family_name(g.family) << " / " << name);
        CHECK(go.render(ollama_values(messages, chat_default_system(fixture(f.fixture)))) !=
              jinja_prompt(fixture(f.fixture), messages, f.bos, f.eos));
      }
    }
  // Without the default system prompt as SYSTEM, Qwen2.5's prompt differs when the conversation has none.
  ojson no_system = ojson::array({msg("user", "Hello!")});
  CHECK(GoTemplate(ollama_template(ChatFamily::kChatML)).render(ollama_values(no_system, std::nullopt)) !=
        jinja_prompt(fixture("qwen25.jinja"), no_system, "", "<|im_end|>"));
}

TEST_CASE("ollama: Qwen3's template (fetched tokenizer_config.json) is ChatML for plain conversations", "[ollama]") {
  json config = json::parse(hearth::io::file_read(hearth::test::assets_dir() / "qwen3" / "tokenizer_config.json"));
  std::string source = config["chat_template"];
  REQUIRE(chat_family_detect(source) == ChatFamily::kChatML);
  CHECK_FALSE(chat_default_system(source).has_value());
  GoTemplate go(ollama_template(ChatFamily::kChatML));
  for (const auto& [name, messages] : conversations()) {
    INFO(name);
    CHECK(go.render(ollama_values(messages, std::nullopt)) == jinja_prompt(source, messages, "", "<|im_end|>"));
  }
}

TEST_CASE("ollama: chat_family_detect claims only templates it reproduces", "[ollama]") {
  for (const Family& f : families()) {
    INFO(f.fixture);
    CHECK(chat_family_detect(fixture(f.fixture)) == f.family);
  }
  // Llama 3 markers, but a dated system header (3.1/3.2 style).
  CHECK_FALSE(chat_family_detect(fixture("llama31_tools.jinja")).has_value());
  // [INST], but Llama 2's <<SYS>> block and spacing.
  CHECK_FALSE(chat_family_detect(fixture("llama2_inst.jinja")).has_value());
  // No known markers.
  CHECK_FALSE(chat_family_detect(fixture("gemma.jinja")).has_value());
  // Mistral v0.2's spacing ("[INST] x [/INST]").
  CHECK_FALSE(chat_family_detect("{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}"
                                 "{{ '[INST] ' + m.content + ' [/INST]' }}{% else %}{{ m.content + eos_token }}"
                                 "{% endif %}{% endfor %}")
                  .has_value());
  // ChatML markers, but the system message dropped.
  CHECK_FALSE(chat_family_detect("{% for m in messages %}{% if m.role != 'system' %}<|im_start|>{{ m.role }}\n"
                                 "{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}<|im_start|>assistant\n")
                  .has_value());
  CHECK_THROWS_AS(chat_family_detect("<|im_start|>{% if %}"), hearth::FormatError);
  CHECK(std::string(chat_family_name(ChatFamily::kLlama3)) == "llama3");
  CHECK(std::string(chat_family_name(ChatFamily::kChatML)) == "chatml");
  CHECK(std::string(chat_family_name(ChatFamily::kMistral)) == "mistral");
}

TEST_CASE("ollama: chat_default_system finds a template's own system prompt", "[ollama]") {
  CHECK(chat_default_system(fixture("qwen25.jinja")) ==
        std::string("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
  CHECK(chat_default_system(fixture("chatml.jinja")) ==
        std::string("You are a helpful AI assistant named SmolLM, trained by Hugging Face"));
  CHECK_FALSE(chat_default_system(fixture("llama3.jinja")).has_value());
  CHECK_FALSE(chat_default_system(fixture("mistral_v03.jinja")).has_value());
  CHECK_FALSE(chat_default_system(fixture("gemma.jinja")).has_value());  // raises on a system message
}

TEST_CASE("ollama: stop strings per family", "[ollama]") {
  CHECK(ollama_stops(ChatFamily::kLlama3) ==
        std::vector<std::string>{"<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"});
  CHECK(ollama_stops(ChatFamily::kChatML) == std::vector<std::string>{"<|im_end|>", "<|im_start|>"});
  CHECK(ollama_stops(ChatFamily::kMistral) == std::vector<std::string>{"</s>", "[INST]", "[/INST]"});
  // The first stop is the end-of-turn marker the family's template writes after each turn.
  for (ChatFamily f : {ChatFamily::kLlama3, ChatFamily::kChatML, ChatFamily::kMistral})
    CHECK(ollama_template(f).find(ollama_stops(f)[0]) != std::string::npos);
}

TEST_CASE("ollama: modelfile_render round-trips every field", "[ollama]") {
  Modelfile m;
  m.from = "./model dir/model-Q4_K_M.gguf";
  m.adapter = "./adapter.gguf";
  m.template_text = ollama_template(ChatFamily::kMistral);
  m.system = "  You are \"Hearth\".\n\tAnswer in one line.\nEnd every reply with \"";
  m.stops = {"<|eot_id|>", "\"quoted\"", " leading and trailing ", "\n\n", "#not a comment", "\"\"x", "é✓"};
  m.parameters = {{"num_ctx", "4096"}, {"temperature", "0.7"}, {"seed", "\"42\""}};
  std::string text = modelfile_render(m);
  INFO(text);
  std::vector<Instruction> got = modelfile_parse(text);
  REQUIRE(got.size() == 4 + m.stops.size() + m.parameters.size());
  CHECK((got[0].name == "from" && got[0].value == m.from));
  CHECK((got[1].name == "adapter" && got[1].value == *m.adapter));
  CHECK((got[2].name == "template" && got[2].value == m.template_text));
  CHECK((got[3].name == "system" && got[3].value == *m.system));
  for (size_t k = 0; k < m.stops.size(); ++k)
    CHECK((got[4 + k].name == "parameter" && got[4 + k].key == "stop" && got[4 + k].value == m.stops[k]));
  for (size_t k = 0; k < m.parameters.size(); ++k) {
    const Instruction& ins = got[4 + m.stops.size() + k];
    CHECK((ins.name == "parameter" && ins.key == m.parameters[k].first && ins.value == m.parameters[k].second));
  }
  // The minimal Modelfile: FROM only.
  Modelfile bare;
  bare.from = "./model.gguf";
  CHECK(modelfile_render(bare) == "FROM ./model.gguf\n");
  bare.system = "";
  CHECK(modelfile_parse(modelfile_render(bare)).at(1).value.empty());
}

TEST_CASE("ollama: modelfile_render rejects values a Modelfile cannot hold", "[ollama]") {
  auto with = [](auto edit) {
    Modelfile m;
    m.from = "./model.gguf";
    m.template_text = ollama_template(ChatFamily::kChatML);
    edit(m);
    return m;
  };
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.template_text += "\"\"\""; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.system = "a \"\"\" b"; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.from = ""; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.from = "a\nFROM b"; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.adapter = "x\ry"; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.parameters = {{"num ctx", "1"}}; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.parameters = {{"", "1"}}; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.system = std::string("bell\x07"); })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.system = "zero\u200bwidth"; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.stops = {std::string("\xff")}; })), ConfigError);
  CHECK_THROWS_AS(modelfile_render(with([](Modelfile& m) { m.stops = {"\"\"\"\n"}; })), ConfigError);
  try {
    modelfile_render(with([](Modelfile& m) { m.system = "x\"\"\"y"; }));
    FAIL("expected ConfigError");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("modelfile: SYSTEM") == 0);
  }
}
