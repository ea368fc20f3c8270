// Parser for hearth's Jinja chat-template engine: recursive descent, one function per precedence level,
// mirroring jinja2's Parser (parse_condexpr, parse_or, ..., parse_unary, parse_primary). See jinja_parser.h.
#include "chat/jinja_parser.h"

#include <initializer_list>

#include "core/error.h"

namespace hearth::chat {
namespace {

using Kind = JinjaToken::Kind;
using EK = JinjaExpr::Kind;
using NK = JinjaNode::Kind;

constexpr int kMaxDepth = 200;  // nesting limit, so that hostile templates cannot overflow the stack

class Parser {
 public:
  Parser(const JinjaSource& src, const std::vector<JinjaToken>& tokens) : src_(src), t_(tokens) {}

  JinjaBody parse_template() {
    std::string stop;
    JinjaBody body = parse_until({}, &stop);
    return body;
  }

 private:
  // ---- token helpers ----
  const JinjaToken& peek(size_t ahead = 0) const {
    size_t i = pos_ + ahead;
    return i < t_.size() ? t_[i] : t_.back();
  }
  const JinjaToken& next() {
    const JinjaToken& t = peek();
    if (pos_ < t_.size() - 1) ++pos_;
    return t;
  }
  bool is_op(const char* op, size_t ahead = 0) const {
    return peek(ahead).kind == Kind::kOperator && peek(ahead).text == op;
  }
  bool is_name(const char* name, size_t ahead = 0) const {
    return peek(ahead).kind == Kind::kName && peek(ahead).text == name;
  }
  static std::string describe(const JinjaToken& t) {
    switch (t.kind) {
      case Kind::kText: return "template text";
      case Kind::kVarBegin: return "'{{'";
      case Kind::kVarEnd: return "'}}'";
      case Kind::kBlockBegin: return "'{%'";
      case Kind::kBlockEnd: return "'%}'";
      case Kind::kName: return "'" + t.text + "'";
      case Kind::kString: return "string literal";
      case Kind::kInt:
      case Kind::kFloat: return "number " + t.text;
      case Kind::kOperator: return "'" + t.text + "'";
      case Kind::kEnd: return "end of template";
    }
    return "?";
  }
  [[noreturn]] void fail(const JinjaToken& at, const std::string& what, const std::string& expected) const {
    throw FormatError(src_.where(at.offset) + ": " + what + "; expected " + expected + ", got " + describe(at));
  }
  void expect_op(const char* op, const char* context) {
    if (!is_op(op)) fail(peek(), std::string("syntax error in ") + context, std::string("'") + op + "'");
    next();
  }
  void expect_kind(Kind kind, const char* what, const char* context) {
    if (peek().kind != kind) fail(peek(), std::string("syntax error in ") + context, what);
    next();
  }
  std::string expect_identifier(const char* context) {
    if (peek().kind != Kind::kName) fail(peek(), std::string("syntax error in ") + context, "a name");
    return next().text;
  }
  JinjaExprPtr make(EK kind, size_t offset) {
    auto e = std::make_unique<JinjaExpr>();
    e->kind = kind;
    e->offset = offset;
    return e;
  }
  struct DepthGuard {
    DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxDepth) p_->fail(p_->peek(), "template nested too deeply", "at most 200 levels");
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  // ---- statements ----
  JinjaBody parse_until(std::initializer_list<const char*> stops, std::string* stop_found);
  JinjaNodePtr parse_statement();
  JinjaNodePtr parse_if(size_t offset);
  JinjaNodePtr parse_for(size_t offset);
  JinjaNodePtr parse_set(size_t offset);
  JinjaNodePtr parse_macro(size_t offset);
  JinjaNodePtr parse_filter_block(size_t offset);
  JinjaExprPtr parse_assign_target(bool allow_attr);
  void end_of_tag(const char* tag) { expect_kind(Kind::kBlockEnd, "'%}'", tag); }
  JinjaBody body_until_end(const char* end_tag, const char* tag) {
    std::string stop;
    JinjaBody body = parse_until({end_tag}, &stop);
    next();
    end_of_tag(tag);
    return body;
  }

  // ---- expressions ----
  JinjaExprPtr parse_expression(bool with_condexpr = true);
  JinjaExprPtr parse_tuple_or_expression(bool with_condexpr);
  JinjaExprPtr parse_binary_level(int level);
  JinjaExprPtr parse_not();
  JinjaExprPtr parse_compare();
  JinjaExprPtr parse_unary(bool with_filter);
  JinjaExprPtr parse_primary();
  JinjaExprPtr parse_postfix(JinjaExprPtr node);
  JinjaExprPtr parse_filter_expr(JinjaExprPtr node);
  JinjaExprPtr parse_subscript(JinjaExprPtr node);
  JinjaExprPtr parse_filter(JinjaExprPtr node);
  JinjaExprPtr parse_test(JinjaExprPtr node);
  void parse_call_args(JinjaExpr& call);
  // callee(args...): a call node whose first argument is the callee.
  JinjaExprPtr parse_call(JinjaExprPtr callee);
  JinjaExprPtr parse_collection(EK kind, const char* close, size_t offset);
  JinjaExprPtr parse_dict(size_t offset);

  const JinjaSource& src_;
  const std::vector<JinjaToken>& t_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------------------------------------
// Statements

// Parses nodes until a `{% <stop> ... %}` tag (left unconsumed after its `{%`) or the end of the template.
JinjaBody Parser::parse_until(std::initializer_list<const char*> stops, std::string* stop_found) {
  DepthGuard guard(this);
  JinjaBody body;
  while (true) {
    const JinjaToken& t = peek();
    if (t.kind == Kind::kEnd) {
      if (stops.size() == 0) return body;
      fail(t, "unexpected end of template", std::string("'{% ") + *(stops.end() - 1) + " %}'");
    }
    if (t.kind == Kind::kText) {
      auto n = std::make_unique<JinjaNode>();
      n->kind = NK::kText;
      n->offset = t.offset;
      n->text = t.text;
      body.push_back(std::move(n));
      next();
    } else if (t.kind == Kind::kVarBegin) {
      next();
      auto n = std::make_unique<JinjaNode>();
      n->kind = NK::kOutput;
      n->offset = t.offset;
      n->expr = parse_tuple_or_expression(true);
      expect_kind(Kind::kVarEnd, "'}}'", "expression");
      body.push_back(std::move(n));
    } else if (t.kind == Kind::kBlockBegin) {
      next();
      for (const char* stop : stops) {
        if (is_name(stop)) {
          *stop_found = stop;
          return body;
        }
      }
      body.push_back(parse_statement());
    } else {
      fail(t, "unexpected token", "template text or a tag");
    }
  }
}

JinjaNodePtr Parser::parse_statement() {
  const JinjaToken& t = peek();
  if (t.kind != Kind::kName) fail(t, "syntax error in tag", "a tag name");
  size_t offset = t.offset;
  std::string name = next().text;
  if (name == "if") return parse_if(offset);
  if (name == "for") return parse_for(offset);
  if (name == "set") return parse_set(offset);
  if (name == "macro") return parse_macro(offset);
  if (name == "filter") return parse_filter_block(offset);
  auto n = std::make_unique<JinjaNode>();
  n->offset = offset;
  if (name == "generation") {
    end_of_tag("generation");
    n->kind = NK::kScope;
    n->body = body_until_end("endgeneration", "endgeneration");
    return n;
  }
  if (name == "break" || name == "continue") {
    end_of_tag(name.c_str());
    n->kind = name == "break" ? NK::kBreak : NK::kContinue;
    return n;
  }
  throw FormatError(src_.where(offset) + ": unknown or unexpected tag '" + name +
                    "'; expected if, for, set, macro, filter, generation, raw, break or continue (or the end "
                    "tag of an open block)");
}

JinjaNodePtr Parser::parse_if(size_t offset) {
  auto n = std::make_unique<JinjaNode>();
  n->kind = NK::kIf;
  n->offset = offset;
  JinjaExprPtr cond = parse_tuple_or_expression(true);
  end_of_tag("if");
  while (true) {
    std::string stop;
    JinjaBody body = parse_until({"elif", "else", "endif"}, &stop);
    n->branches.emplace_back(std::move(cond), std::move(body));
    next();
    if (stop == "elif") {
      cond = parse_tuple_or_expression(true);
      end_of_tag("elif");
    } else if (stop == "else") {
      end_of_tag("else");
      n->branches.emplace_back(nullptr, body_until_end("endif", "endif"));
      return n;
    } else {
      end_of_tag("endif");
      return n;
    }
  }
}

JinjaNodePtr Parser::parse_for(size_t offset) {
  auto n = std::make_unique<JinjaNode>();
  n->kind = NK::kFor;
  n->offset = offset;
  n->target = parse_assign_target(false);
  if (!is_name("in")) fail(peek(), "syntax error in for", "'in'");
  next();
  n->expr = parse_tuple_or_expression(false);
  if (is_name("if")) {
    next();
    n->condition = parse_expression(true);
  }
  if (is_name("recursive")) fail(peek(), "recursive loops are not supported", "'%}'");
  end_of_tag("for");
  std::string stop;
  n->body = parse_until({"else", "endfor"}, &stop);
  next();
  if (stop == "else") {
    end_of_tag("else");
    n->else_body = body_until_end("endfor", "endfor");
  } else {
    end_of_tag("endfor");
  }
  return n;
}

JinjaNodePtr Parser::parse_set(size_t offset) {
  auto n = std::make_unique<JinjaNode>();
  n->offset = offset;
  n->target = parse_assign_target(true);
  if (is_op("=")) {
    next();
    n->kind = NK::kSet;
    n->expr = parse_tuple_or_expression(true);
    end_of_tag("set");
    return n;
  }
  if (n->target->kind == EK::kTuple) fail(peek(), "syntax error in set", "'='");
  n->kind = NK::kSetBlock;
  end_of_tag("set");
  n->body = body_until_end("endset", "endset");
  return n;
}

JinjaNodePtr Parser::parse_macro(size_t offset) {
  auto n = std::make_unique<JinjaNode>();
  n->kind = NK::kMacro;
  n->offset = offset;
  n->name = expect_identifier("macro");
  expect_op("(", "macro");
  while (!is_op(")")) {
    if (!n->params.empty()) expect_op(",", "macro parameters");
    if (is_op(")")) break;
    std::string param = expect_identifier("macro parameters");
    JinjaExprPtr def;
    if (is_op("=")) {
      next();
      def = parse_expression(true);
    }
    n->params.emplace_back(param, std::move(def));
  }
  next();
  end_of_tag("macro");
  n->body = body_until_end("endmacro", "endmacro");
  return n;
}

JinjaNodePtr Parser::parse_filter_block(size_t offset) {
  auto n = std::make_unique<JinjaNode>();
  n->kind = NK::kFilterBlock;
  n->offset = offset;
  n->expr = parse_filter(nullptr);
  while (is_op("|")) n->expr = parse_filter(std::move(n->expr));
  end_of_tag("filter");
  n->body = body_until_end("endfilter", "endfilter");
  return n;
}

// A name, `ns.attr` (when allow_attr) or a comma-separated tuple of names, optionally parenthesized.
JinjaExprPtr Parser::parse_assign_target(bool allow_attr) {
  size_t offset = peek().offset;
  bool parens = is_op("(");
  if (parens) next();
  auto tuple = make(EK::kTuple, offset);
  while (true) {
    auto name = make(EK::kName, peek().offset);
    name->name = expect_identifier("assignment target");
    if (allow_attr && is_op(".") && tuple->args.empty()) {
      next();
      auto attr = make(EK::kGetAttr, name->offset);
      attr->name = expect_identifier("assignment target");
      attr->args.push_back(std::move(name));
      return attr;
    }
    tuple->args.push_back(std::move(name));
    if (!is_op(",")) break;
    next();
  }
  if (parens) expect_op(")", "assignment target");
  if (tuple->args.size() == 1 && !parens) return std::move(tuple->args[0]);
  return tuple;
}

// ---------------------------------------------------------------------------------------------------------
// Expressions

JinjaExprPtr Parser::parse_tuple_or_expression(bool with_condexpr) {
  size_t offset = peek().offset;
  JinjaExprPtr first = parse_expression(with_condexpr);
  if (!is_op(",")) return first;
  auto tuple = make(EK::kTuple, offset);
  tuple->args.push_back(std::move(first));
  while (is_op(",")) {
    next();
    if (peek().kind == Kind::kBlockEnd || peek().kind == Kind::kVarEnd || is_op(")")) break;
    tuple->args.push_back(parse_expression(with_condexpr));
  }
  return tuple;
}

JinjaExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(this);
  JinjaExprPtr expr = parse_binary_level(0);
  while (with_condexpr && is_name("if")) {
    size_t offset = next().offset;
    auto cond = make(EK::kCondition, offset);
    cond->args.push_back(parse_binary_level(0));
    cond->args.push_back(std::move(expr));
    if (is_name("else")) {
      next();
      cond->args.push_back(parse_expression(true));
    } else {
      cond->args.push_back(nullptr);
    }
    expr = std::move(cond);
  }
  return expr;
}

// Binary operator levels, loosest first; level 2 is `not`, then comparisons, then these again.
JinjaExprPtr Parser::parse_binary_level(int level) {
  static const std::vector<std::vector<const char*>> kLevels = {
      {"or"}, {"and"}, {}, {}, {"+", "-"}, {"~"}, {"*", "/", "//", "%"}, {"**"}};
  if (level == 2) return parse_not();
  if (level == 3) return parse_compare();
  if (level == 8) return parse_unary(true);
  JinjaExprPtr left = parse_binary_level(level + 1);
  while (true) {
    const char* found = nullptr;
    for (const char* op : kLevels[level]) {
      bool word = op[0] >= 'a' && op[0] <= 'z';
      if (word ? is_name(op) : is_op(op)) found = op;
    }
    if (!found) return left;
    auto bin = make(EK::kBinary, next().offset);
    bin->name = found;
    bin->args.push_back(std::move(left));
    bin->args.push_back(parse_binary_level(level + 1));
    left = std::move(bin);
  }
}

JinjaExprPtr Parser::parse_not() {
  if (is_name("not")) {
    DepthGuard guard(this);
    auto n = make(EK::kUnary, next().offset);
    n->name = "not";
    n->args.push_back(parse_not());
    return n;
  }
  return parse_compare();
}

JinjaExprPtr Parser::parse_compare() {
  size_t offset = peek().offset;
  JinjaExprPtr first = parse_binary_level(4);
  JinjaExprPtr cmp;
  while (true) {
    std::string op;
    for (const char* o : {"==", "!=", "<", "<=", ">", ">="})
      if (is_op(o)) op = o;
    if (op.empty() && is_name("in")) op = "in";
    if (op.empty() && is_name("not") && is_name("in", 1)) {
      next();
      op = "notin";
    }
    if (op.empty()) break;
    next();
    if (!cmp) {
      cmp = make(EK::kCompare, offset);
      cmp->args.push_back(std::move(first));
    }
    cmp->ops.push_back(op);
    cmp->args.push_back(parse_binary_level(4));
  }
  return cmp ? std::move(cmp) : std::move(first);
}

JinjaExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard guard(this);
  JinjaExprPtr node;
  if (is_op("-") || is_op("+")) {
    const JinjaToken& t = next();
    node = make(EK::kUnary, t.offset);
    node->name = t.text;
    node->args.push_back(parse_unary(false));
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  return with_filter ? parse_filter_expr(std::move(node)) : std::move(node);
}

JinjaExprPtr Parser::parse_primary() {
  const JinjaToken& t = peek();
  size_t offset = t.offset;
  if (t.kind == Kind::kName) {
    next();
    auto e = make(EK::kLiteral, offset);
    if (t.text == "true" || t.text == "True") {
      e->value = Value(true);
    } else if (t.text == "false" || t.text == "False") {
      e->value = Value(false);
    } else if (t.text == "none" || t.text == "None") {
      e->value = Value::none();
    } else {
      e->kind = EK::kName;
      e->name = t.text;
    }
    return e;
  }
  if (t.kind == Kind::kString) {
    std::string s;
    while (peek().kind == Kind::kString) s += next().text;  // adjacent literals concatenate
    auto e = make(EK::kLiteral, offset);
    e->value = Value(std::move(s));
    return e;
  }
  if (t.kind == Kind::kInt || t.kind == Kind::kFloat) {
    next();
    auto e = make(EK::kLiteral, offset);
    e->value = t.kind == Kind::kInt ? Value(t.int_value) : Value(t.float_value);
    return e;
  }
  if (is_op("(")) {
    next();
    if (is_op(")")) {
      next();
      return make(EK::kTuple, offset);
    }
    JinjaExprPtr inner = parse_tuple_or_expression(true);
    expect_op(")", "parenthesized expression");
    return inner;
  }
  if (is_op("[")) {
    next();
    return parse_collection(EK::kList, "]", offset);
  }
  if (is_op("{")) {
    next();
    return parse_dict(offset);
  }
  fail(t, "syntax error in expression", "a value, name or '('");
}

JinjaExprPtr Parser::parse_collection(EK kind, const char* close, size_t offset) {
  auto e = make(kind, offset);
  while (!is_op(close)) {
    if (!e->args.empty()) expect_op(",", "list literal");
    if (is_op(close)) break;
    e->args.push_back(parse_expression(true));
  }
  next();
  return e;
}

JinjaExprPtr Parser::parse_dict(size_t offset) {
  auto e = make(EK::kDict, offset);
  while (!is_op("}")) {
    if (!e->args.empty()) expect_op(",", "dict literal");
    if (is_op("}")) break;
    e->args.push_back(parse_expression(true));
    expect_op(":", "dict literal");
    e->args.push_back(parse_expression(true));
  }
  next();
  return e;
}

JinjaExprPtr Parser::parse_postfix(JinjaExprPtr node) {
  while (true) {
    if (is_op(".") || is_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

JinjaExprPtr Parser::parse_call(JinjaExprPtr callee) {
  auto call = make(EK::kCall, callee->offset);
  call->args.push_back(std::move(callee));
  parse_call_args(*call);
  return call;
}

JinjaExprPtr Parser::parse_filter_expr(JinjaExprPtr node) {
  while (true) {
    if (is_op("|")) {
      node = parse_filter(std::move(node));
    } else if (is_name("is")) {
      node = parse_test(std::move(node));
    } else if (is_op("(")) {
      node = parse_call(std::move(node));
    } else {
      return node;
    }
  }
}

JinjaExprPtr Parser::parse_subscript(JinjaExprPtr node) {
  const JinjaToken& t = next();
  if (t.text == ".") {
    const JinjaToken& attr = peek();
    if (attr.kind == Kind::kName) {
      auto e = make(EK::kGetAttr, t.offset);
      e->name = next().text;
      e->args.push_back(std::move(node));
      return e;
    }
    if (attr.kind == Kind::kInt) {
      auto e = make(EK::kGetItem, t.offset);
      e->args.push_back(std::move(node));
      auto index = make(EK::kLiteral, attr.offset);
      index->value = Value(next().int_value);
      e->args.push_back(std::move(index));
      return e;
    }
    fail(attr, "syntax error in attribute access", "a name");
  }
  // '[': an index or a slice a:b:c with any part omitted.
  JinjaExprPtr parts[3];
  int part = 0;
  bool slice = false;
  while (!is_op("]")) {
    if (is_op(":")) {
      next();
      slice = true;
      if (++part > 2) fail(peek(), "syntax error in slice", "']'");
      continue;
    }
    if (parts[part]) fail(peek(), "syntax error in subscript", "':' or ']'");
    parts[part] = parse_tuple_or_expression(true);
  }
  next();
  if (!slice) {
    if (!parts[0]) fail(peek(), "syntax error in subscript", "an index");
    auto e = make(EK::kGetItem, t.offset);
    e->args.push_back(std::move(node));
    e->args.push_back(std::move(parts[0]));
    return e;
  }
  auto e = make(EK::kSlice, t.offset);
  e->args.push_back(std::move(node));
  for (auto& p : parts) e->args.push_back(std::move(p));
  return e;
}

void Parser::parse_call_args(JinjaExpr& call) {
  expect_op("(", "call");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",", "call arguments");
    first = false;
    if (is_op(")")) break;
    if (peek().kind == Kind::kName && is_op("=", 1)) {
      std::string key = next().text;
      next();
      call.kwargs.emplace_back(key, parse_expression(true));
    } else {
      if (!call.kwargs.empty()) fail(peek(), "positional argument follows keyword argument", "a keyword");
      call.args.push_back(parse_expression(true));
    }
  }
  next();
}

// `| name` or `| name(args)`; node null inside {% filter %}.
JinjaExprPtr Parser::parse_filter(JinjaExprPtr node) {
  if (node) expect_op("|", "filter");
  auto e = make(EK::kFilter, peek().offset);
  e->name = expect_identifier("filter");
  while (is_op(".")) {
    next();
    e->name += "." + expect_identifier("filter");
  }
  e->args.push_back(std::move(node));
  if (is_op("(")) parse_call_args(*e);
  return e;
}

JinjaExprPtr Parser::parse_test(JinjaExprPtr node) {
  auto e = make(EK::kTest, next().offset);
  if (is_name("not")) {
    next();
    e->negated = true;
  }
  e->name = expect_identifier("test");
  e->args.push_back(std::move(node));
  const JinjaToken& t = peek();
  if (is_op("(")) {
    parse_call_args(*e);
  } else if ((t.kind == Kind::kName || t.kind == Kind::kString || t.kind == Kind::kInt || t.kind == Kind::kFloat ||
              is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    e->args.push_back(parse_postfix(parse_primary()));
  }
  return e;
}

}  // namespace

JinjaBody jinja_parse(const JinjaSource& source, const std::vector<JinjaToken>& tokens) {
  return Parser(source, tokens).parse_template();
}

}  // namespace hearth::chat
