// Attribute/item access, iteration, tests and Python methods of hearth's Jinja engine. See jinja_builtins.h.
// Filters are in jinja_filters.cpp.
#include "chat/jinja_builtins.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <unordered_map>

namespace hearth::chat {

// ---------------------------------------------------------------------------------------------------------
// Arguments

JinjaArgs::JinjaArgs(const CallArgs& args, std::string function, std::vector<std::string> params)
    : args_(args), function_(std::move(function)), params_(std::move(params)), bound_(params_.size(), nullptr) {
  for (size_t i = 0; i < args.positional.size() && i < params_.size(); ++i) bound_[i] = &args.positional[i];
  for (const auto& kw : args.keyword) {
    auto it = std::find(params_.begin(), params_.end(), kw.first);
    if (it == params_.end()) {
      throw JinjaError(function_ + "() got an unexpected keyword argument '" + kw.first + "'");
    }
    bound_[it - params_.begin()] = &kw.second;
  }
}

Value JinjaArgs::get(size_t i, const Value& fallback) const {
  return i < bound_.size() && bound_[i] ? *bound_[i] : fallback;
}

bool JinjaArgs::has(size_t i) const { return i < bound_.size() && bound_[i]; }

std::vector<Value> JinjaArgs::rest() const {
  std::vector<Value> out;
  for (size_t i = params_.size(); i < args_.positional.size(); ++i) out.push_back(args_.positional[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Access and iteration

Value jinja_getattr(const Value& obj, const std::string& name) {
  if (obj.is_dict() || obj.is_namespace()) {
    if (const Value* v = obj.as_dict().find(name)) return *v;
  }
  return Value::undefined(name);
}

static int64_t normalize_index(int64_t i, size_t size) { return i < 0 ? i + static_cast<int64_t>(size) : i; }

Value jinja_getitem(const Value& obj, const Value& key) {
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    if (obj.is_list()) {
      const auto& items = obj.as_list();
      int64_t i = normalize_index(key.as_int(), items.size());
      if (i >= 0 && i < static_cast<int64_t>(items.size())) return items[i];
      return Value::undefined();
    }
    std::u32string cps = utf8_decode(obj.as_string());
    int64_t i = normalize_index(key.as_int(), cps.size());
    if (i >= 0 && i < static_cast<int64_t>(cps.size())) return Value(utf8_encode(cps.substr(i, 1)));
    return Value::undefined();
  }
  if (key.is_string()) return jinja_getattr(obj, key.as_string());
  return Value::undefined();
}

Value jinja_getattr_path(const Value& obj, const std::string& path) {
  Value v = obj;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    v = numeric && v.is_list() ? jinja_getitem(v, Value(static_cast<int64_t>(std::stoll(part))))
                               : jinja_getitem(v, Value(part));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

std::vector<Value> jinja_iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return v.as_list();
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: {
      std::vector<Value> keys;
      for (const auto& kv : v.as_dict().items()) keys.emplace_back(kv.first);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      for (char32_t c : utf8_decode(v.as_string())) chars.emplace_back(utf8_encode(std::u32string(1, c)));
      return chars;
    }
    default: throw JinjaError("'" + v.type_name() + "' object is not iterable");
  }
}

size_t jinja_length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return utf8_decode(v.as_string()).size();
    case Value::Kind::kList: return v.as_list().size();
    case Value::Kind::kDict:
    case Value::Kind::kNamespace: return v.as_dict().size();
    default: throw JinjaError("object of type '" + v.type_name() + "' has no len()");
  }
}

std::string jinja_strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::u32string cps = utf8_decode(s);
  std::u32string set;
  bool whitespace = chars.is_none() || chars.is_undefined();
  if (!whitespace) {
    if (!chars.is_string()) throw JinjaError("strip arg must be None or str, got " + chars.type_name());
    set = utf8_decode(chars.as_string());
  }
  auto strip_it = [&](char32_t c) { return whitespace ? is_unicode_space(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && strip_it(cps[b])) ++b;
  if (right)
    while (e > b && strip_it(cps[e - 1])) --e;
  return utf8_encode(cps.substr(b, e - b));
}

// ---------------------------------------------------------------------------------------------------------
// Tests

namespace {

using TestFn = std::function<bool(const Value&, const JinjaArgs&)>;

Value require_arg(const JinjaArgs& a, const char* test) {
  if (!a.has(0)) throw JinjaError(std::string("test '") + test + "' needs an argument");
  return a.get(0);
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) throw JinjaError("'in <string>' requires string as left operand, not " + item.type_name());
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_dict() || container.is_namespace())
    return item.is_string() && container.as_dict().find(item.as_string());
  for (const Value& v : jinja_iterate(container))
    if (value_equal(v, item)) return true;
  return false;
}

bool string_all(const Value& v, int (*pred)(int)) {
  if (!v.is_string()) return false;
  bool any_cased = false;
  for (unsigned char c : v.as_string()) {
    if (std::isalpha(c)) {
      any_cased = true;
      if (!pred(c)) return false;
    }
  }
  return any_cased;
}

const std::unordered_map<std::string, TestFn>& tests() {
  static const std::unordered_map<std::string, TestFn> table = {
      {"defined", [](const Value& v, const JinjaArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const JinjaArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const JinjaArgs&) { return v.is_none(); }},
      {"string", [](const Value& v, const JinjaArgs&) { return v.is_string(); }},
      {"number", [](const Value& v, const JinjaArgs&) { return v.is_number(); }},
      {"integer", [](const Value& v, const JinjaArgs&) { return v.is_int(); }},
      {"float", [](const Value& v, const JinjaArgs&) { return v.is_float(); }},
      {"boolean", [](const Value& v, const JinjaArgs&) { return v.is_bool(); }},
      {"true", [](const Value& v, const JinjaArgs&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, const JinjaArgs&) { return v.is_bool() && !v.as_bool(); }},
      {"mapping", [](const Value& v, const JinjaArgs&) { return v.is_dict(); }},
      {"iterable", [](const Value& v,
                      const JinjaArgs&) { return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined(); }},
      {"sequence", [](const Value& v, const JinjaArgs&) { return v.is_list() || v.is_dict() || v.is_string(); }},
      {"callable", [](const Value& v, const JinjaArgs&) { return v.is_callable(); }},
      {"odd",
       [](const Value& v, const JinjaArgs&) {
         if (!v.is_int()) throw JinjaError("test 'odd' needs an integer, got " + v.type_name());
         return v.as_int() % 2 != 0;
       }},
      {"even",
       [](const Value& v, const JinjaArgs&) {
         if (!v.is_int()) throw JinjaError("test 'even' needs an integer, got " + v.type_name());
         return v.as_int() % 2 == 0;
       }},
      {"divisibleby",
       [](const Value& v, const JinjaArgs& a) {
         Value n = require_arg(a, "divisibleby");
         if (!v.is_number() || !n.is_number() || n.as_float() == 0)
           throw JinjaError("test 'divisibleby' needs non-zero numbers");
         return v.is_float() || n.is_float() ? std::fmod(v.as_float(), n.as_float()) == 0
                                             : v.as_int() % n.as_int() == 0;
       }},
      {"in", [](const Value& v, const JinjaArgs& a) { return contains(require_arg(a, "in"), v); }},
      {"eq", [](const Value& v, const JinjaArgs& a) { return value_equal(v, require_arg(a, "eq")); }},
      {"ne", [](const Value& v, const JinjaArgs& a) { return !value_equal(v, require_arg(a, "ne")); }},
      {"lt", [](const Value& v, const JinjaArgs& a) { return value_compare(v, require_arg(a, "lt")) < 0; }},
      {"le", [](const Value& v, const JinjaArgs& a) { return value_compare(v, require_arg(a, "le")) <= 0; }},
      {"gt", [](const Value& v, const JinjaArgs& a) { return value_compare(v, require_arg(a, "gt")) > 0; }},
      {"ge", [](const Value& v, const JinjaArgs& a) { return value_compare(v, require_arg(a, "ge")) >= 0; }},
      {"sameas",
       [](const Value& v, const JinjaArgs& a) {
         Value o = require_arg(a, "sameas");
         if (v.kind() != o.kind()) return false;
         if (v.is_list()) return &v.as_list() == &o.as_list();
         if (v.is_dict() || v.is_namespace()) return &v.as_dict() == &o.as_dict();
         return value_equal(v, o);
       }},
      {"lower", [](const Value& v, const JinjaArgs&) { return string_all(v, [](int c) { return std::islower(c); }); }},
      {"upper", [](const Value& v, const JinjaArgs&) { return string_all(v, [](int c) { return std::isupper(c); }); }},
  };
  return table;
}

const std::unordered_map<std::string, std::string>& test_aliases() {
  static const std::unordered_map<std::string, std::string> aliases = {
      {"equalto", "eq"}, {"==", "eq"},          {"!=", "ne"}, {"lessthan", "lt"}, {"<", "lt"},
      {"<=", "le"},      {"greaterthan", "gt"}, {">", "gt"},  {">=", "ge"}};
  return aliases;
}

}  // namespace

bool jinja_has_test(const std::string& name) { return tests().count(name) || test_aliases().count(name); }

bool jinja_test(const std::string& name, const Value& operand, const CallArgs& args) {
  auto alias = test_aliases().find(name);
  const std::string& key = alias == test_aliases().end() ? name : alias->second;
  auto it = tests().find(key);
  if (it == tests().end()) throw JinjaError("unknown test '" + name + "'");
  return it->second(operand, JinjaArgs(args, name, {"other"}));
}

// ---------------------------------------------------------------------------------------------------------
// Methods

namespace {

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return s;
}

// Python str.split(sep=None, maxsplit=-1).
Value string_split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  Value::List parts;
  if (sep.is_none() || sep.is_undefined()) {
    std::u32string cps = utf8_decode(s);
    std::vector<std::u32string> words;
    size_t i = 0;
    while (i < cps.size()) {
      while (i < cps.size() && is_unicode_space(cps[i])) ++i;
      if (i >= cps.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
        std::u32string rest = cps.substr(i);
        while (!rest.empty() && is_unicode_space(rest.back())) rest.pop_back();
        words.push_back(rest);
        break;
      }
      size_t j = i;
      while (j < cps.size() && !is_unicode_space(cps[j])) ++j;
      words.push_back(cps.substr(i, j - i));
      i = j;
    }
    for (auto& w : words) parts.emplace_back(utf8_encode(w));
    return Value::list(std::move(parts));
  }
  if (!sep.is_string()) throw JinjaError("split() separator must be str or None, got " + sep.type_name());
  const std::string& d = sep.as_string();
  if (d.empty()) throw JinjaError("split(): empty separator");
  std::vector<std::string> out;
  if (!from_right) {
    size_t start = 0, found;
    while ((maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) &&
           (found = s.find(d, start)) != std::string::npos) {
      out.push_back(s.substr(start, found - start));
      start = found + d.size();
    }
    out.push_back(s.substr(start));
  } else {
    size_t end = s.size();
    while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
      if (end < d.size()) break;
      size_t found = s.rfind(d, end - d.size());
      if (found == std::string::npos) break;
      out.insert(out.begin(), s.substr(found + d.size(), end - found - d.size()));
      end = found;
    }
    out.insert(out.begin(), s.substr(0, end));
  }
  for (auto& p : out) parts.emplace_back(std::move(p));
  return Value::list(std::move(parts));
}

bool affix_match(const std::string& s, const Value& affix, bool prefix) {
  auto one = [&](const Value& a) {
    if (!a.is_string())
      throw JinjaError(std::string(prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str");
    const std::string& x = a.as_string();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) return std::any_of(affix.as_list().begin(), affix.as_list().end(), one);
  return one(affix);
}

std::string replace_all(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts `with` around every character
    std::u32string cps = utf8_decode(s);
    int64_t n = 0;
    for (char32_t c : cps) {
      if (count < 0 || n++ < count) out += with;
      out += utf8_encode(std::u32string(1, c));
    }
    if (count < 0 || n < count) out += with;
    return out;
  }
  size_t start = 0, found;
  int64_t n = 0;
  while ((count < 0 || n < count) && (found = s.find(old, start)) != std::string::npos) {
    out += s.substr(start, found - start) + with;
    start = found + old.size();
    ++n;
  }
  return out + s.substr(start);
}

// Python str.format with {} / {0} / {name} fields (no format specs).
std::string string_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if ((c == '{' || c == '}') && i + 1 < fmt.size() && fmt[i + 1] == c) {
      out += c;
      ++i;
    } else if (c == '{') {
      size_t close = fmt.find('}', i);
      if (close == std::string::npos) throw JinjaError("format(): single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      const Value* v = nullptr;
      if (field.empty() || std::isdigit(static_cast<unsigned char>(field[0]))) {
        size_t idx = field.empty() ? auto_index++ : std::stoul(field);
        if (idx < args.positional.size()) v = &args.positional[idx];
      } else {
        for (const auto& kw : args.keyword)
          if (kw.first == field) v = &kw.second;
      }
      if (!v) throw JinjaError("format(): no argument for field '{" + field + "}'");
      out += v->str();
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

bool string_method(const std::string& s, const std::string& name, const CallArgs& args, Value* result) {
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    JinjaArgs a(args, name, {"chars"});
    *result = Value(jinja_strip(s, a.get(0), name != "rstrip", name != "lstrip"));
  } else if (name == "startswith" || name == "endswith") {
    JinjaArgs a(args, name, {"prefix"});
    *result = Value(affix_match(s, a.get(0), name == "startswith"));
  } else if (name == "split" || name == "rsplit") {
    JinjaArgs a(args, name, {"sep", "maxsplit"});
    int64_t maxsplit = a.has(1) && a.get(1).is_number() ? a.get(1).as_int() : -1;
    *result = string_split(s, a.get(0), maxsplit, name == "rsplit");
  } else if (name == "replace") {
    JinjaArgs a(args, name, {"old", "new", "count"});
    if (!a.get(0).is_string() || !a.get(1).is_string()) throw JinjaError("replace() arguments must be strings");
    *result = Value(replace_all(s, a.get(0).as_string(), a.get(1).as_string(), a.has(2) ? a.get(2).as_int() : -1));
  } else if (name == "upper" || name == "lower") {
    *result = Value(ascii_map(s, name == "upper" ? ::toupper : ::tolower));
  } else if (name == "title" || name == "capitalize") {
    CallArgs none;
    *result = jinja_filter(name, Value(s), none);
  } else if (name == "format") {
    *result = Value(string_format(s, args));
  } else if (name == "find" || name == "count") {
    JinjaArgs a(args, name, {"sub"});
    if (!a.get(0).is_string()) throw JinjaError(name + "() argument must be str");
    const std::string sub = a.get(0).as_string();
    if (name == "find") {
      size_t p = s.find(sub);
      *result = Value(p == std::string::npos ? int64_t{-1} : static_cast<int64_t>(utf8_decode(s.substr(0, p)).size()));
    } else {
      *result = Value(static_cast<int64_t>(sub.empty() ? utf8_decode(s).size() + 1 : 0));
      if (!sub.empty())
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size()))
          *result = Value(result->as_int() + 1);
    }
  } else if (name == "join") {
    JinjaArgs a(args, name, {"iterable"});
    std::string out;
    bool first = true;
    for (const Value& v : jinja_iterate(a.get(0))) {
      if (!v.is_string()) throw JinjaError("join(): sequence item must be str, got " + v.type_name());
      out += (first ? "" : s) + v.as_string();
      first = false;
    }
    *result = Value(out);
  } else if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum") {
    std::u32string cps = utf8_decode(s);
    bool ok = !cps.empty();
    for (char32_t c : cps) {
      bool ascii = c < 0x80;
      if (name == "isdigit") ok = ok && ascii && std::isdigit(static_cast<int>(c));
      if (name == "isspace") ok = ok && is_unicode_space(c);
      if (name == "isalpha") ok = ok && ascii && std::isalpha(static_cast<int>(c));
      if (name == "isalnum") ok = ok && ascii && std::isalnum(static_cast<int>(c));
    }
    *result = Value(ok);
  } else {
    return false;
  }
  return true;
}

bool dict_method(const Value& d, const std::string& name, const CallArgs& args, Value* result) {
  if (name == "items" || name == "keys" || name == "values") {
    JinjaArgs a(args, name, {});
    Value::List out;
    for (const auto& kv : d.as_dict().items()) {
      if (name == "items") out.push_back(Value::tuple({Value(kv.first), kv.second}));
      if (name == "keys") out.emplace_back(kv.first);
      if (name == "values") out.push_back(kv.second);
    }
    *result = Value::list(std::move(out));
  } else if (name == "get") {
    JinjaArgs a(args, name, {"key", "default"});
    const Value* v = a.get(0).is_string() ? d.as_dict().find(a.get(0).as_string()) : nullptr;
    *result = v ? *v : a.get(1, Value::none());
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool jinja_method(const Value& object, const std::string& name, const CallArgs& args, Value* result) {
  if (object.is_string()) return string_method(object.as_string(), name, args, result);
  if (object.is_dict()) return dict_method(object, name, args, result);
  if (object.is_list() && (name == "index" || name == "count")) {
    JinjaArgs a(args, name, {"value"});
    int64_t n = 0, index = -1;
    for (size_t i = 0; i < object.as_list().size(); ++i) {
      if (value_equal(object.as_list()[i], a.get(0))) {
        if (index < 0) index = static_cast<int64_t>(i);
        ++n;
      }
    }
    if (name == "index" && index < 0) throw JinjaError(a.get(0).repr() + " is not in list");
    *result = Value(name == "index" ? index : n);
    return true;
  }
  return false;
}

}  // namespace hearth::chat
