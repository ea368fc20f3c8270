// Built-in filters, tests and methods of hearth's Jinja chat-template engine, with jinja2/Python semantics.
//
// Filters follow jinja2's builtin filters (jinja2/filters.py as documented in "List of Builtin Filters"), plus
// transformers' `tojson` (json.dumps(ensure_ascii=False), no HTML escaping). Tests follow "List of Builtin
// Tests". Methods are the Python str/dict methods templates call (`s.strip('\n')`, `d.items()`). Case
// mapping (upper, lower, title, capitalize) covers ASCII letters only. Not here: globals (range, namespace,
// raise_exception, strftime_now) live with the interpreter in jinja_eval.cpp.
//
// Errors are JinjaError without a source location; the interpreter adds "<origin>:<line>:<col>: ".
#pragma once

#include <string>
#include <vector>

#include "chat/jinja_value.h"

namespace hearth::chat {

// Binds call arguments to named parameters (positional first, then by keyword). Throws JinjaError for an
// unknown keyword, naming `function`; positional arguments past the parameters are available from rest().
class JinjaArgs {
 public:
  JinjaArgs(const CallArgs& args, std::string function, std::vector<std::string> params);
  // The i-th parameter, or `fallback` when not passed.
  Value get(size_t i, const Value& fallback = Value()) const;
  bool has(size_t i) const;
  // Positional arguments past the named parameters (for select(test, *args) and the like).
  std::vector<Value> rest() const;

 private:
  const CallArgs& args_;
  std::string function_;
  std::vector<std::string> params_;
  std::vector<const Value*> bound_;
};

// `obj.name`: a dict item or namespace attribute; undefined when missing (also for undefined/none `obj`).
Value jinja_getattr(const Value& obj, const std::string& name);
// `obj[key]`: list/string index (negative from the end), dict key, else attribute; undefined when missing.
Value jinja_getitem(const Value& obj, const Value& key);
// `obj.a.b` for a dotted attribute path, as selectattr/map(attribute=...) take it; integer parts index lists.
Value jinja_getattr_path(const Value& obj, const std::string& path);

// Iteration as `for` sees it: list items, dict keys, string characters; undefined iterates as empty. Throws
// JinjaError for values that are not iterable (none, numbers).
std::vector<Value> jinja_iterate(const Value& v);

// Whether a filter or test of that name exists (checked when a template is parsed, as jinja2 does).
bool jinja_has_filter(const std::string& name);
bool jinja_has_test(const std::string& name);

// Applies a filter / test. Throws JinjaError for unknown names and bad arguments.
Value jinja_filter(const std::string& name, const Value& operand, const CallArgs& args);
bool jinja_test(const std::string& name, const Value& operand, const CallArgs& args);

// Calls the Python method `name` of a string, dict or list. Returns false when there is no such method.
bool jinja_method(const Value& object, const std::string& name, const CallArgs& args, Value* result);

// String helpers shared by filters and methods (code-point aware).
std::string jinja_strip(const std::string& s, const Value& chars, bool left, bool right);
size_t jinja_length(const Value& v);  // len(): code points, items, keys; throws for numbers/none

}  // namespace hearth::chat
