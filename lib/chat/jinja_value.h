// The value type of hearth's Jinja interpreter (chat templates), with Python semantics.
//
// Chat templates are written for Python jinja2, so values behave like the Python objects jinja2 would see:
// dicts keep insertion order, `{{ x }}` prints str(x) (True, None, ['a', 1]), `==` treats 1 == 1.0 == True,
// and tojson is json.dumps(ensure_ascii=False) as Hugging Face transformers installs it. This is not a general
// Python object model: there are no sets, bytes, big integers (ints are 64-bit) or user classes.
// Specified by the jinja2 docs ("Template Designer Documentation") and the Python language reference.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hearth::chat {

// A runtime error raised by an operator or builtin before the interpreter knows where it happened; the
// interpreter rethrows it as a FormatError prefixed with "<origin>:<line>:<col>: ".
class JinjaError : public FormatError {
 public:
  using FormatError::FormatError;
};

class Value;

// Arguments of a call: positional, then keyword (in source order).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

// A callable value: a macro, a global function (range, namespace, ...) or a bound loop.cycle.
struct Callable {
  std::string name;
  std::function<Value(CallArgs&)> fn;
};

// An insertion-ordered string-keyed map (Python dict / jinja2 namespace). Lookups are linear: template dicts
// are small.
class Dict {
 public:
  const Value* find(const std::string& key) const;
  Value* find(const std::string& key);
  // Inserts or overwrites, keeping the first insertion position (Python semantics).
  void set(const std::string& key, Value value);
  const std::vector<std::pair<std::string, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> items_;
};

// A Jinja value. Lists, dicts and namespaces are shared by reference (as in Python); everything else is a
// plain value. Undefined remembers the name it was looked up by, for error messages.
class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };
  using List = std::vector<Value>;

  Value() = default;  // undefined
  static Value undefined(std::string name = {});
  static Value none();
  Value(bool b);
  Value(int64_t i);
  Value(int i) : Value(static_cast<int64_t>(i)) {}
  Value(double f);
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}
  static Value list(List items = {});
  // A Python tuple: a list that prints as (a, b) (dict.items(), dictsort, tuple literals).
  static Value tuple(List items);
  static Value dict();
  static Value namespace_();
  static Value callable(std::string name, std::function<Value(CallArgs&)> fn);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  // int, float or bool (bool is an int in Python).
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  // Accessors; calling one for the wrong kind is a bug (asserts).
  bool as_bool() const { return b_; }
  int64_t as_int() const;   // int or bool
  double as_float() const;  // int, float or bool
  const std::string& as_string() const { return s_; }
  const std::string& undefined_name() const { return s_; }
  List& as_list() const { return *list_; }
  Dict& as_dict() const { return *dict_; }  // dict or namespace
  const Callable& as_callable() const { return *callable_; }

  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python str(): what `{{ x }}` prints. Undefined prints as the empty string.
  std::string str() const;
  // Python repr() (strings quoted), used inside str() of lists and dicts.
  std::string repr() const;
  // A short kind name for error messages ("string", "list", "undefined", ...).
  std::string type_name() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<Callable> callable_;
};

// Python == (1 == 1.0 == True, lists and dicts compared deeply, undefined equals only undefined).
bool value_equal(const Value& a, const Value& b);
// Python <: numbers with numbers, strings with strings (by code point), lists lexicographically. Returns
// -1/0/1; throws JinjaError("... not supported between ...") for other pairs.
int value_compare(const Value& a, const Value& b);

// Python repr of a float ("1.0", "1e-05", "inf", "nan").
std::string float_repr(double f);

// JSON (nlohmann, either key order) -> Value: null -> none, objects -> insertion-ordered dicts.
Value value_from_json(const nlohmann::json& j);
Value value_from_json(const nlohmann::ordered_json& j);

// Python json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys) with the default separators
// (", " and ": ", or "," and ": " when indented). indent < 0 means no indent. Undefined dumps as null.
// Throws JinjaError for values JSON cannot hold (callables).
std::string value_to_json(const Value& v, int indent = -1, bool sort_keys = false);

// UTF-8 helpers with Python's notion of characters (code points) and whitespace.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);
bool is_unicode_space(char32_t c);

}  // namespace hearth::chat
