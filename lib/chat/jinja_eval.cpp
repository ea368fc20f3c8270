// Interpreter of hearth's Jinja chat-template engine: a tree walker over jinja_parser's nodes. See
// jinja_eval.h for scoping and Undefined semantics; operators follow Python (jinja2 compiles to Python).
#include "chat/jinja_eval.h"

#include <chrono>
#include <cmath>
#include <unordered_map>

#include "chat/jinja_builtins.h"

namespace hearth::chat {
namespace {

using EK = JinjaExpr::Kind;
using NK = JinjaNode::Kind;

constexpr int kMaxCallDepth = 100;         // macro recursion limit
constexpr int64_t kMaxRange = 10'000'000;  // range() length limit

class Scope {
 public:
  explicit Scope(const Scope* parent) : parent_(parent) {}
  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent_) {
      auto it = s->vars_.find(name);
      if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
  }
  void set(const std::string& name, Value v) { vars_[name] = std::move(v); }

 private:
  std::unordered_map<std::string, Value> vars_;
  const Scope* parent_;
};

enum class Flow { kNormal, kBreak, kContinue };

std::string type_pair(const char* op, const Value& a, const Value& b) {
  return std::string("unsupported operand type(s) for ") + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'";
}

Value repeat(const Value& seq, int64_t n) {
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value(out);
  }
  Value::List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
  return Value::list(std::move(out));
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
  if (a.is_number() && b.is_number()) {
    if (op == "+") return ints ? Value(a.as_int() + b.as_int()) : Value(a.as_float() + b.as_float());
    if (op == "-") return ints ? Value(a.as_int() - b.as_int()) : Value(a.as_float() - b.as_float());
    if (op == "*") return ints ? Value(a.as_int() * b.as_int()) : Value(a.as_float() * b.as_float());
    if (b.as_float() == 0 && op != "**") throw JinjaError("division by zero");
    if (op == "/") return Value(a.as_float() / b.as_float());
    if (op == "//") {
      if (!ints) return Value(std::floor(a.as_float() / b.as_float()));
      int64_t q = a.as_int() / b.as_int();
      return Value((a.as_int() % b.as_int() != 0 && ((a.as_int() < 0) != (b.as_int() < 0))) ? q - 1 : q);
    }
    if (op == "%") {
      if (!ints) {
        double r = std::fmod(a.as_float(), b.as_float());
        return Value(r != 0 && ((r < 0) != (b.as_float() < 0)) ? r + b.as_float() : r);
      }
      int64_t r = a.as_int() % b.as_int();
      return Value(r != 0 && ((r < 0) != (b.as_int() < 0)) ? r + b.as_int() : r);
    }
    if (op == "**") {
      if (ints && b.as_int() >= 0) {
        int64_t r = 1;
        for (int64_t i = 0; i < b.as_int(); ++i) r *= a.as_int();
        return Value(r);
      }
      return Value(std::pow(a.as_float(), b.as_float()));
    }
  }
  if (op == "+" && a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
  if (op == "+" && a.is_list() && b.is_list()) {
    Value::List out = a.as_list();
    out.insert(out.end(), b.as_list().begin(), b.as_list().end());
    return Value::list(std::move(out));
  }
  if (op == "*" && (a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
  if (op == "*" && (b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
  if (a.is_undefined() || b.is_undefined()) {
    const Value& u = a.is_undefined() ? a : b;
    throw JinjaError((u.undefined_name().empty() ? std::string("value") : "'" + u.undefined_name() + "'") +
                     " is undefined");
  }
  throw JinjaError(type_pair(op.c_str(), a, b));
}

bool contains(const Value& container, const Value& item) {
  CallArgs args;
  args.positional.push_back(container);
  return jinja_test("in", item, args);
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return value_equal(a, b);
  if (op == "!=") return !value_equal(a, b);
  if (op == "in") return contains(b, a);
  if (op == "notin") return !contains(b, a);
  int c = value_compare(a, b);
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

// Python slicing of lists and strings (by code point), including negative steps.
Value slice(const Value& seq, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto num = [](const Value& v, const char* what) {
    if (v.is_none() || v.is_undefined()) return std::optional<int64_t>();
    if (!v.is_int() && !v.is_bool()) throw JinjaError(std::string("slice ") + what + " must be an integer or none");
    return std::optional<int64_t>(v.as_int());
  };
  int64_t step = num(step_v, "step").value_or(1);
  if (step == 0) throw JinjaError("slice step cannot be zero");
  std::u32string cps;
  int64_t n;
  if (seq.is_string()) {
    cps = utf8_decode(seq.as_string());
    n = static_cast<int64_t>(cps.size());
  } else if (seq.is_list()) {
    n = static_cast<int64_t>(seq.as_list().size());
  } else if (seq.is_undefined()) {
    return Value::undefined();
  } else {
    throw JinjaError("'" + seq.type_name() + "' object is not subscriptable");
  }
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v < 0 ? *v + n : *v;
    if (step > 0) return std::min(std::max<int64_t>(i, 0), n);
    return std::min(std::max<int64_t>(i, -1), n - 1);
  };
  int64_t start = clamp(num(start_v, "start"), step > 0 ? 0 : n - 1);
  int64_t stop = clamp(num(stop_v, "stop"), step > 0 ? n : -1);
  Value::List items;
  std::u32string chars;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (seq.is_string()) {
      chars += cps[i];
    } else {
      items.push_back(seq.as_list()[i]);
    }
  }
  return seq.is_string() ? Value(utf8_encode(chars)) : Value::list(std::move(items));
}

class Interpreter {
 public:
  Interpreter(const JinjaSource& src, const JinjaRenderOptions& options, const Value& variables)
      : src_(src), options_(options), globals_(nullptr), vars_(&globals_), root_(&vars_) {
    install_globals();
    if (variables.is_dict())
      for (const auto& kv : variables.as_dict().items()) vars_.set(kv.first, kv.second);
  }

  std::string run(const JinjaBody& body) {
    std::string out;
    render(body, root_, out);
    return out;
  }

 private:
  [[noreturn]] void fail(size_t offset, const std::string& what) const {
    throw FormatError(src_.where(offset) + ": " + what);
  }
  void install_globals();
  Flow render(const JinjaBody& body, Scope& scope, std::string& out);
  Flow render_node(const JinjaNode& node, Scope& scope, std::string& out);
  void render_for(const JinjaNode& node, Scope& scope, std::string& out);
  void assign(const JinjaExpr& target, const Value& value, Scope& scope);
  Value call_macro(const JinjaNode& macro, const CallArgs& args);
  Value apply_filters(const JinjaExpr& filter, const Value& operand, Scope& scope);
  CallArgs eval_args(const JinjaExpr& e, size_t first, Scope& scope);
  Value eval(const JinjaExpr& e, Scope& scope);
  Value eval_inner(const JinjaExpr& e, Scope& scope);
  Value eval_call(const JinjaExpr& e, Scope& scope);

  const JinjaSource& src_;
  const JinjaRenderOptions& options_;
  Scope globals_;  // range, namespace, ...
  Scope vars_;     // the caller's variables (shadow globals)
  Scope root_;     // the template's top-level `set`s and macros
  size_t call_offset_ = 0;
  int call_depth_ = 0;
};

void Interpreter::install_globals() {
  globals_.set("range", Value::callable("range", [](CallArgs& a) {
                 std::vector<int64_t> n;
                 for (const Value& v : a.positional) {
                   if (!v.is_int() && !v.is_bool())
                     throw JinjaError("range() arguments must be integers, got " + v.type_name());
                   n.push_back(v.as_int());
                 }
                 if (n.empty() || n.size() > 3 || !a.keyword.empty())
                   throw JinjaError("range() takes 1 to 3 integer arguments");
                 int64_t start = n.size() > 1 ? n[0] : 0, stop = n.size() > 1 ? n[1] : n[0],
                         step = n.size() > 2 ? n[2] : 1;
                 if (step == 0) throw JinjaError("range() step must not be zero");
                 Value::List out;
                 for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                   if (static_cast<int64_t>(out.size()) >= kMaxRange) throw JinjaError("range() too long");
                   out.emplace_back(i);
                 }
                 return Value::list(std::move(out));
               }));
  auto make_mapping = [](Value target, CallArgs& a) {
    for (const Value& v : a.positional) {
      if (!v.is_dict()) throw JinjaError("namespace()/dict() positional argument must be a dict");
      for (const auto& kv : v.as_dict().items()) target.as_dict().set(kv.first, kv.second);
    }
    for (const auto& kw : a.keyword) target.as_dict().set(kw.first, kw.second);
    return target;
  };
  globals_.set("namespace",
               Value::callable("namespace", [=](CallArgs& a) { return make_mapping(Value::namespace_(), a); }));
  globals_.set("dict", Value::callable("dict", [=](CallArgs& a) { return make_mapping(Value::dict(), a); }));
  globals_.set("raise_exception", Value::callable("raise_exception", [this](CallArgs& a) -> Value {
                 throw JinjaRaisedError(src_.where(call_offset_),
                                        a.positional.empty() ? std::string() : a.positional[0].str());
               }));
  globals_.set("strftime_now", Value::callable("strftime_now", [this](CallArgs& a) {
                 JinjaArgs args(a, "strftime_now", {"format"});
                 std::tm tm{};
                 if (options_.now) {
                   tm = *options_.now;
                 } else {
                   std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
                   localtime_r(&t, &tm);
                 }
                 std::string format = args.get(0).str();
                 if (format.empty()) return Value("");
                 std::string buf(format.size() * 8 + 64, '\0');
                 size_t n = std::strftime(&buf[0], buf.size(), format.c_str(), &tm);
                 buf.resize(n);
                 return Value(buf);
               }));
}

// ---------------------------------------------------------------------------------------------------------
// Statements

Flow Interpreter::render(const JinjaBody& body, Scope& scope, std::string& out) {
  for (const auto& node : body) {
    Flow flow = render_node(*node, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Flow Interpreter::render_node(const JinjaNode& node, Scope& scope, std::string& out) {
  switch (node.kind) {
    case NK::kText: out += node.text; break;
    case NK::kOutput: out += eval(*node.expr, scope).str(); break;
    case NK::kIf:
      for (const auto& branch : node.branches) {
        if (!branch.first || eval(*branch.first, scope).truthy()) return render(branch.second, scope, out);
      }
      break;
    case NK::kFor: render_for(node, scope, out); break;
    case NK::kSet: assign(*node.target, eval(*node.expr, scope), scope); break;
    case NK::kSetBlock: {
      std::string captured;
      render(node.body, scope, captured);
      assign(*node.target, Value(captured), scope);
      break;
    }
    case NK::kMacro: {
      const JinjaNode* macro = &node;
      scope.set(node.name, Value::callable(node.name, [this, macro](CallArgs& a) { return call_macro(*macro, a); }));
      break;
    }
    case NK::kFilterBlock: {
      std::string captured;
      render(node.body, scope, captured);
      out += apply_filters(*node.expr, Value(captured), scope).str();
      break;
    }
    case NK::kScope: return render(node.body, scope, out);
    case NK::kBreak: return Flow::kBreak;
    case NK::kContinue: return Flow::kContinue;
  }
  return Flow::kNormal;
}

void Interpreter::render_for(const JinjaNode& node, Scope& scope, std::string& out) {
  Value iterable = eval(*node.expr, scope);
  std::vector<Value> items;
  try {
    items = jinja_iterate(iterable);
  } catch (const JinjaError& e) {
    fail(node.expr->offset, e.what());
  }
  if (node.condition) {
    std::vector<Value> kept;
    for (const Value& item : items) {
      Scope probe(&scope);
      assign(*node.target, item, probe);
      if (eval(*node.condition, probe).truthy()) kept.push_back(item);
    }
    items = std::move(kept);
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    Scope iteration(&scope);
    Value loop = Value::dict();
    Dict& d = loop.as_dict();
    d.set("index", Value(i + 1));
    d.set("index0", Value(i));
    d.set("revindex", Value(n - i));
    d.set("revindex0", Value(n - i - 1));
    d.set("first", Value(i == 0));
    d.set("last", Value(i == n - 1));
    d.set("length", Value(n));
    d.set("depth", Value(1));
    d.set("depth0", Value(0));
    d.set("previtem", i > 0 ? items[i - 1] : Value::undefined("previtem"));
    d.set("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("nextitem"));
    d.set("cycle", Value::callable("cycle", [i](CallArgs& a) {
            if (a.positional.empty()) throw JinjaError("loop.cycle() needs at least one argument");
            return a.positional[static_cast<size_t>(i) % a.positional.size()];
          }));
    iteration.set("loop", loop);
    assign(*node.target, items[i], iteration);
    if (render(node.body, iteration, out) == Flow::kBreak) break;
  }
  if (n == 0) render(node.else_body, scope, out);
}

void Interpreter::assign(const JinjaExpr& target, const Value& value, Scope& scope) {
  if (target.kind == EK::kName) {
    scope.set(target.name, value);
  } else if (target.kind == EK::kTuple) {
    std::vector<Value> parts;
    try {
      parts = jinja_iterate(value);
    } catch (const JinjaError& e) {
      fail(target.offset, std::string("cannot unpack: ") + e.what());
    }
    if (parts.size() != target.args.size()) {
      fail(target.offset, "cannot unpack; expected " + std::to_string(target.args.size()) + " values, got " +
                              std::to_string(parts.size()));
    }
    for (size_t i = 0; i < parts.size(); ++i) assign(*target.args[i], parts[i], scope);
  } else {  // kGetAttr on a name: namespace attribute
    const Value* ns = scope.lookup(target.args[0]->name);
    if (!ns || !ns->is_namespace()) {
      fail(target.offset, "cannot assign attribute '" + target.name + "'; expected a namespace, got " +
                              (ns ? ns->type_name() : std::string("undefined")) + " '" + target.args[0]->name + "'");
    }
    ns->as_dict().set(target.name, value);
  }
}

Value Interpreter::call_macro(const JinjaNode& macro, const CallArgs& args) {
  if (call_depth_ >= kMaxCallDepth) fail(macro.offset, "macro '" + macro.name + "' recursed too deeply");
  if (args.positional.size() > macro.params.size()) {
    fail(call_offset_, "macro '" + macro.name + "' takes " + std::to_string(macro.params.size()) + " arguments; got " +
                           std::to_string(args.positional.size()));
  }
  Scope frame(&root_);
  std::vector<bool> bound(macro.params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    frame.set(macro.params[i].first, args.positional[i]);
    bound[i] = true;
  }
  for (const auto& kw : args.keyword) {
    size_t i = 0;
    while (i < macro.params.size() && macro.params[i].first != kw.first) ++i;
    if (i == macro.params.size()) fail(call_offset_, "macro '" + macro.name + "' has no parameter '" + kw.first + "'");
    frame.set(kw.first, kw.second);
    bound[i] = true;
  }
  for (size_t i = 0; i < macro.params.size(); ++i) {
    if (bound[i]) continue;
    const auto& p = macro.params[i];
    frame.set(p.first, p.second ? eval(*p.second, frame) : Value::undefined(p.first));
  }
  ++call_depth_;
  std::string out;
  try {
    render(macro.body, frame, out);
  } catch (...) {
    --call_depth_;
    throw;
  }
  --call_depth_;
  return Value(out);
}

// ---------------------------------------------------------------------------------------------------------
// Expressions

Value Interpreter::eval(const JinjaExpr& e, Scope& scope) {
  try {
    return eval_inner(e, scope);
  } catch (const JinjaError& err) {
    fail(e.offset, err.what());
  }
}

CallArgs Interpreter::eval_args(const JinjaExpr& e, size_t first, Scope& scope) {
  CallArgs args;
  for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(eval(*e.args[i], scope));
  for (const auto& kw : e.kwargs) args.keyword.emplace_back(kw.first, eval(*kw.second, scope));
  return args;
}

Value Interpreter::apply_filters(const JinjaExpr& filter, const Value& operand, Scope& scope) {
  const JinjaExpr* inner = filter.args[0].get();
  Value input = !inner                       ? operand
                : inner->kind == EK::kFilter ? apply_filters(*inner, operand, scope)
                                             : eval(*inner, scope);
  CallArgs args = eval_args(filter, 1, scope);
  try {
    return jinja_filter(filter.name, input, args);
  } catch (const JinjaError& err) {
    fail(filter.offset, err.what());
  }
}

Value Interpreter::eval_call(const JinjaExpr& e, Scope& scope) {
  const JinjaExpr& callee = *e.args[0];
  Value f;
  if (callee.kind == EK::kGetAttr) {
    Value obj = eval(*callee.args[0], scope);
    CallArgs args = eval_args(e, 1, scope);
    Value result;
    if (jinja_method(obj, callee.name, args, &result)) return result;
    f = jinja_getattr(obj, callee.name);
    if (!f.is_callable()) throw JinjaError("'" + obj.type_name() + "' object has no method '" + callee.name + "'");
    call_offset_ = e.offset;
    return f.as_callable().fn(args);
  }
  f = eval(callee, scope);
  if (!f.is_callable()) {
    if (callee.kind == EK::kName && f.is_undefined()) throw JinjaError("unknown function '" + callee.name + "'");
    throw JinjaError("'" + f.type_name() + "' object is not callable");
  }
  CallArgs args = eval_args(e, 1, scope);
  call_offset_ = e.offset;
  return f.as_callable().fn(args);
}

Value Interpreter::eval_inner(const JinjaExpr& e, Scope& scope) {
  switch (e.kind) {
    case EK::kLiteral: return e.value;
    case EK::kName: {
      const Value* v = scope.lookup(e.name);
      return v ? *v : Value::undefined(e.name);
    }
    case EK::kList:
    case EK::kTuple: {
      Value::List items;
      for (const auto& a : e.args) items.push_back(eval(*a, scope));
      return e.kind == EK::kTuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    case EK::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2)
        d.as_dict().set(eval(*e.args[i], scope).str(), eval(*e.args[i + 1], scope));
      return d;
    }
    case EK::kGetAttr: return jinja_getattr(eval(*e.args[0], scope), e.name);
    case EK::kGetItem: return jinja_getitem(eval(*e.args[0], scope), eval(*e.args[1], scope));
    case EK::kSlice: {
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (e.args[i + 1]) parts[i] = eval(*e.args[i + 1], scope);
      return slice(eval(*e.args[0], scope), parts[0], parts[1], parts[2]);
    }
    case EK::kCall: return eval_call(e, scope);
    case EK::kFilter: return apply_filters(e, Value(), scope);
    case EK::kTest: {
      Value operand = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, 1, scope);
      return Value(jinja_test(e.name, operand, args) != e.negated);
    }
    case EK::kUnary: {
      Value v = eval(*e.args[0], scope);
      if (e.name == "not") return Value(!v.truthy());
      if (!v.is_number()) throw JinjaError("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      if (e.name == "+") return v.is_bool() ? Value(v.as_int()) : v;
      return v.is_float() ? Value(-v.as_float()) : Value(-v.as_int());
    }
    case EK::kBinary: {
      Value a = eval(*e.args[0], scope);
      if (e.name == "and") return a.truthy() ? eval(*e.args[1], scope) : a;
      if (e.name == "or") return a.truthy() ? a : eval(*e.args[1], scope);
      Value b = eval(*e.args[1], scope);
      if (e.name == "~") return Value(a.str() + b.str());
      return arithmetic(e.name, a, b);
    }
    case EK::kCompare: {
      Value left = eval(*e.args[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1], scope);
        if (!compare(e.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case EK::kCondition:
      if (eval(*e.args[0], scope).truthy()) return eval(*e.args[1], scope);
      return e.args[2] ? eval(*e.args[2], scope) : Value::undefined();
  }
  return Value::undefined();
}

// ---------------------------------------------------------------------------------------------------------
// Name checks

void check_expr(const JinjaSource& src, const JinjaExpr* e) {
  if (!e) return;
  if (e->kind == EK::kFilter && !jinja_has_filter(e->name))
    throw FormatError(src.where(e->offset) + ": unknown filter '" + e->name + "'");
  if (e->kind == EK::kTest && !jinja_has_test(e->name))
    throw FormatError(src.where(e->offset) + ": unknown test '" + e->name + "'");
  for (const auto& a : e->args) check_expr(src, a.get());
  for (const auto& kw : e->kwargs) check_expr(src, kw.second.get());
}

void check_body(const JinjaSource& src, const JinjaBody& body) {
  for (const auto& n : body) {
    check_expr(src, n->expr.get());
    check_expr(src, n->condition.get());
    for (const auto& b : n->branches) {
      check_expr(src, b.first.get());
      check_body(src, b.second);
    }
    for (const auto& p : n->params) check_expr(src, p.second.get());
    check_body(src, n->body);
    check_body(src, n->else_body);
  }
}

}  // namespace

void jinja_check_names(const JinjaSource& source, const JinjaBody& body) { check_body(source, body); }

std::string jinja_render(const JinjaSource& source, const JinjaBody& body, const Value& variables,
                         const JinjaRenderOptions& options) {
  return Interpreter(source, options, variables).run(body);
}

}  // namespace hearth::chat
