// Built-in filters of hearth's Jinja engine (jinja2's "List of Builtin Filters" plus transformers' tojson).
// See jinja_builtins.h for the contract.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <unordered_map>

#include "chat/jinja_builtins.h"

namespace hearth::chat {
namespace {

using FilterFn = std::function<Value(const Value&, const CallArgs&)>;

std::string ascii_map(std::string s, int (*f)(int)) {
  for (char& c : s) c = static_cast<char>(f(static_cast<unsigned char>(c)));
  return s;
}

const std::string& need_string(const Value& v, const char* filter, std::string& holder) {
  if (v.is_string()) return v.as_string();
  holder = v.str();  // jinja2 filters call soft_str on their input
  (void)filter;
  return holder;
}

// jinja2's title: capitalize after a run of '-', whitespace or an opening bracket.
std::string title_case(const std::string& s) {
  std::string out;
  bool start = true;
  for (unsigned char c : s) {
    bool boundary = c == '-' || std::isspace(c) || c == '(' || c == '{' || c == '[' || c == '<';
    out += static_cast<char>(start && !boundary ? std::toupper(c) : std::tolower(c));
    start = boundary;
  }
  return out;
}

std::string capitalize(const std::string& s) {
  std::string out = ascii_map(s, ::tolower);
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

// \uXXXX-escapes every non-ASCII character of a JSON text (json.dumps(ensure_ascii=True)).
std::string json_ascii(const std::string& json) {
  std::string out;
  char buf[16];
  for (char32_t c : utf8_decode(json)) {
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      char32_t v = c - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xd800 + (v >> 10)),
                    static_cast<unsigned>(0xdc00 + (v & 0x3ff)));
      out += buf;
    }
  }
  return out;
}

Value tojson(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  // transformers' signature is tojson(x, ensure_ascii=False, indent=None, ...); `tojson(2)` in templates is
  // jinja2's tojson(indent) form, so a lone positional integer is the indent.
  Value indent = a.get(1, Value::none());
  Value ensure_ascii = a.get(0, Value(false));
  if (ensure_ascii.is_int() && !a.has(1)) {
    indent = ensure_ascii;
    ensure_ascii = Value(false);
  }
  if (a.has(2) && !a.get(2).is_none()) throw JinjaError("tojson(): separators are not supported");
  int n = indent.is_none() ? -1 : static_cast<int>(indent.as_int());
  std::string json = value_to_json(v, n, a.get(3, Value(false)).truthy());
  return Value(ensure_ascii.truthy() ? json_ascii(json) : json);
}

// Whether `item` passes select/reject's test (or is truthy when no test is named).
bool passes(const Value& item, const std::vector<Value>& test_args) {
  if (test_args.empty()) return item.truthy();
  if (!test_args[0].is_string()) throw JinjaError("select/reject: test name must be a string");
  CallArgs args;
  args.positional.assign(test_args.begin() + 1, test_args.end());
  return jinja_test(test_args[0].as_string(), item, args);
}

Value select_filter(const Value& v, const CallArgs& args, bool by_attr, bool keep) {
  std::vector<Value> rest(args.positional.begin(), args.positional.end());
  std::string attr;
  if (by_attr) {
    if (rest.empty() || !rest[0].is_string()) throw JinjaError("selectattr/rejectattr: need an attribute name");
    attr = rest[0].as_string();
    rest.erase(rest.begin());
  }
  Value::List out;
  for (const Value& item : jinja_iterate(v)) {
    Value subject = by_attr ? jinja_getattr_path(item, attr) : item;
    if (passes(subject, rest) == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value map_filter(const Value& v, const CallArgs& args) {
  Value::List out;
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& kw : args.keyword) {
    if (kw.first == "attribute") attribute = &kw.second;
    if (kw.first == "default") fallback = &kw.second;
  }
  for (const Value& item : jinja_iterate(v)) {
    if (attribute) {
      Value x = jinja_getattr_path(item, attribute->str());
      out.push_back(x.is_undefined() && fallback ? *fallback : x);
    } else {
      if (args.positional.empty() || !args.positional[0].is_string())
        throw JinjaError("map: need a filter name or attribute=");
      CallArgs rest;
      rest.positional.assign(args.positional.begin() + 1, args.positional.end());
      rest.keyword = args.keyword;
      out.push_back(jinja_filter(args.positional[0].as_string(), item, rest));
    }
  }
  return Value::list(std::move(out));
}

// Sort key that folds ASCII case when asked (jinja2's ignore_case).
Value sort_key(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value(ascii_map(v.as_string(), ::tolower)) : v;
}

Value sort_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "sort", {"reverse", "case_sensitive", "attribute"});
  bool reverse = a.get(0).truthy(), cs = a.get(1).truthy();
  std::vector<Value> items = jinja_iterate(v);
  auto key = [&](const Value& x) { return sort_key(a.has(2) ? jinja_getattr_path(x, a.get(2).str()) : x, cs); };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? value_compare(key(y), key(x)) < 0 : value_compare(key(x), key(y)) < 0;
  });
  return Value::list(std::move(items));
}

Value dictsort_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) throw JinjaError("dictsort: expected a dict, got " + v.type_name());
  bool cs = a.get(0).truthy(), by_value = a.get(1).str() == "value", reverse = a.get(2).truthy();
  std::vector<Value> items;
  for (const auto& kv : v.as_dict().items()) items.push_back(Value::tuple({Value(kv.first), kv.second}));
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    int c = value_compare(sort_key(x.as_list()[by_value], cs), sort_key(y.as_list()[by_value], cs));
    return reverse ? c > 0 : c < 0;
  });
  return Value::list(std::move(items));
}

Value unique_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "unique", {"case_sensitive", "attribute"});
  Value::List out, seen;
  for (const Value& item : jinja_iterate(v)) {
    Value key = sort_key(a.has(1) ? jinja_getattr_path(item, a.get(1).str()) : item, a.get(0).truthy());
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return value_equal(s, key); })) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

Value indent_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "indent", {"width", "first", "blank"});
  Value width = a.get(0, Value(4));
  std::string pad = width.is_string() ? width.as_string() : std::string(static_cast<size_t>(width.as_int()), ' ');
  std::string s = v.str() + "\n";
  std::vector<std::string> lines;
  for (size_t start = 0, nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(s.substr(start, nl - start));
  std::string out = lines.empty() ? "" : lines[0];
  for (size_t i = 1; i < lines.size(); ++i)
    out += "\n" + ((a.get(2).truthy() || !lines[i].empty()) ? pad + lines[i] : lines[i]);
  return Value(a.get(1).truthy() ? pad + out : out);
}

Value int_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "int", {"default", "base"});
  if (v.is_number()) return Value(v.is_float() ? static_cast<int64_t>(std::trunc(v.as_float())) : v.as_int());
  if (v.is_string()) {
    std::string s = jinja_strip(v.as_string(), Value::none(), true, true);
    char* end = nullptr;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end && *end == '\0') return Value(static_cast<int64_t>(i));
    double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0' && std::isfinite(f)) return Value(static_cast<int64_t>(std::trunc(f)));
  }
  return a.get(0, Value(0));
}

Value float_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "float", {"default"});
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string()) {
    std::string s = jinja_strip(v.as_string(), Value::none(), true, true);
    char* end = nullptr;
    double f = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == '\0') return Value(f);
  }
  return a.get(0, Value(0.0));
}

Value round_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "round", {"precision", "method"});
  if (!v.is_number()) throw JinjaError("round: expected a number, got " + v.type_name());
  double scale = std::pow(10.0, static_cast<double>(a.get(0, Value(0)).as_int()));
  std::string method = a.get(1, Value("common")).str();
  double x = v.as_float() * scale;
  // Python's round() rounds half to even (the default floating-point rounding mode of nearbyint).
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value(r / scale);
}

Value join_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "join", {"d", "attribute"});
  std::string sep = a.get(0, Value("")).str(), out;
  bool first = true;
  for (const Value& item : jinja_iterate(v)) {
    out += (first ? "" : sep) + (a.has(1) ? jinja_getattr_path(item, a.get(1).str()) : item).str();
    first = false;
  }
  return Value(out);
}

Value minmax_filter(const Value& v, const CallArgs& args, bool want_max) {
  JinjaArgs a(args, want_max ? "max" : "min", {"case_sensitive", "attribute"});
  std::vector<Value> items = jinja_iterate(v);
  if (items.empty()) return Value::undefined();
  auto key = [&](const Value& x) {
    return sort_key(a.has(1) ? jinja_getattr_path(x, a.get(1).str()) : x, a.get(0).truthy());
  };
  const Value* best = &items[0];
  for (const Value& x : items) {
    int c = value_compare(key(x), key(*best));
    if (want_max ? c > 0 : c < 0) best = &x;
  }
  return *best;
}

Value sum_filter(const Value& v, const CallArgs& args) {
  JinjaArgs a(args, "sum", {"attribute", "start"});
  Value total = a.get(1, Value(0));
  for (const Value& x : jinja_iterate(v)) {
    Value item = a.has(0) ? jinja_getattr_path(x, a.get(0).str()) : x;
    if (!item.is_number() || !total.is_number()) throw JinjaError("sum: items must be numbers");
    total = total.is_float() || item.is_float() ? Value(total.as_float() + item.as_float())
                                                : Value(total.as_int() + item.as_int());
  }
  return total;
}

Value list_of(const Value& v) { return Value::list(jinja_iterate(v)); }

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> table = {
      {"trim",
       [](const Value& v, const CallArgs& args) {
         JinjaArgs a(args, "trim", {"chars"});
         std::string h;
         return Value(jinja_strip(need_string(v, "trim", h), a.get(0), true, true));
       }},
      {"tojson", tojson},
      {"length", [](const Value& v, const CallArgs&) { return Value(static_cast<int64_t>(jinja_length(v))); }},
      {"upper", [](const Value& v, const CallArgs&) { return Value(ascii_map(v.str(), ::toupper)); }},
      {"lower", [](const Value& v, const CallArgs&) { return Value(ascii_map(v.str(), ::tolower)); }},
      {"title", [](const Value& v, const CallArgs&) { return Value(title_case(v.str())); }},
      {"capitalize", [](const Value& v, const CallArgs&) { return Value(capitalize(v.str())); }},
      {"default",
       [](const Value& v, const CallArgs& args) {
         JinjaArgs a(args, "default", {"default_value", "boolean"});
         bool use_default = v.is_undefined() || (a.get(1).truthy() && !v.truthy());
         return use_default ? a.get(0, Value("")) : v;
       }},
      {"join", join_filter},
      {"first",
       [](const Value& v, const CallArgs&) {
         std::vector<Value> items = jinja_iterate(v);
         return items.empty() ? Value::undefined() : items.front();
       }},
      {"last",
       [](const Value& v, const CallArgs&) {
         std::vector<Value> items = jinja_iterate(v);
         return items.empty() ? Value::undefined() : items.back();
       }},
      {"list", [](const Value& v, const CallArgs&) { return list_of(v); }},
      {"string", [](const Value& v, const CallArgs&) { return Value(v.str()); }},
      {"int", int_filter},
      {"float", float_filter},
      {"abs",
       [](const Value& v, const CallArgs&) {
         if (!v.is_number()) throw JinjaError("abs: expected a number, got " + v.type_name());
         return v.is_float() ? Value(std::fabs(v.as_float())) : Value(static_cast<int64_t>(std::llabs(v.as_int())));
       }},
      {"round", round_filter},
      {"replace",
       [](const Value& v, const CallArgs& args) {
         CallArgs rest = args;
         Value result;
         jinja_method(Value(v.str()), "replace", rest, &result);
         return result;
       }},
      {"selectattr", [](const Value& v, const CallArgs& a) { return select_filter(v, a, true, true); }},
      {"rejectattr", [](const Value& v, const CallArgs& a) { return select_filter(v, a, true, false); }},
      {"select", [](const Value& v, const CallArgs& a) { return select_filter(v, a, false, true); }},
      {"reject", [](const Value& v, const CallArgs& a) { return select_filter(v, a, false, false); }},
      {"map", map_filter},
      {"items",
       [](const Value& v, const CallArgs& args) {
         if (v.is_undefined()) return Value::list();
         if (!v.is_dict()) throw JinjaError("items: expected a dict, got " + v.type_name());
         Value result;
         jinja_method(v, "items", args, &result);
         return result;
       }},
      {"dictsort", dictsort_filter},
      {"unique", unique_filter},
      {"sort", sort_filter},
      {"reverse",
       [](const Value& v, const CallArgs&) {
         if (v.is_string()) {
           std::u32string cps = utf8_decode(v.as_string());
           return Value(utf8_encode(std::u32string(cps.rbegin(), cps.rend())));
         }
         std::vector<Value> items = jinja_iterate(v);
         return Value::list(std::vector<Value>(items.rbegin(), items.rend()));
       }},
      {"indent", indent_filter},
      {"safe", [](const Value& v, const CallArgs&) { return v; }},
      {"escape", [](const Value& v, const CallArgs&) { return Value(html_escape(v.str())); }},
      {"min", [](const Value& v, const CallArgs& a) { return minmax_filter(v, a, false); }},
      {"max", [](const Value& v, const CallArgs& a) { return minmax_filter(v, a, true); }},
      {"sum", sum_filter},
      {"attr",
       [](const Value& v, const CallArgs& args) {
         JinjaArgs a(args, "attr", {"name"});  // getattr only: dict items are not attributes
         return v.is_namespace() ? jinja_getattr(v, a.get(0).str()) : Value::undefined(a.get(0).str());
       }},
      {"format",
       [](const Value& v, const CallArgs& args) {
         // "%s"-style formatting: %s and %d take the next argument, %% is a percent sign.
         std::string fmt = v.str(), out;
         size_t next = 0;
         for (size_t i = 0; i < fmt.size(); ++i) {
           if (fmt[i] != '%' || i + 1 >= fmt.size()) {
             out += fmt[i];
             continue;
           }
           char c = fmt[++i];
           if (c == '%') {
             out += '%';
             continue;
           }
           if (c != 's' && c != 'd') throw JinjaError(std::string("format: unsupported conversion %") + c);
           if (next >= args.positional.size()) throw JinjaError("format: not enough arguments for format string");
           const Value& arg = args.positional[next++];
           out += c == 'd' && arg.is_number()
                      ? std::to_string(arg.is_float() ? static_cast<int64_t>(arg.as_float()) : arg.as_int())
                      : arg.str();
         }
         return Value(out);
       }},
  };
  return table;
}

const std::unordered_map<std::string, std::string>& filter_aliases() {
  static const std::unordered_map<std::string, std::string> aliases = {
      {"d", "default"}, {"count", "length"}, {"e", "escape"}};
  return aliases;
}

}  // namespace

bool jinja_has_filter(const std::string& name) { return filters().count(name) || filter_aliases().count(name); }

Value jinja_filter(const std::string& name, const Value& operand, const CallArgs& args) {
  auto alias = filter_aliases().find(name);
  auto it = filters().find(alias == filter_aliases().end() ? name : alias->second);
  if (it == filters().end()) throw JinjaError("unknown filter '" + name + "'");
  return it->second(operand, args);
}

}  // namespace hearth::chat
