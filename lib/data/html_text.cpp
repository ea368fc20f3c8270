#include "data/html_text.h"

#include <cctype>
#include <cstring>
#include <set>
#include <unordered_map>

#include "data/text_util.h"
#include "tokenizer/unicode.h"

namespace hearth::data {
namespace {

// HTML 4 Latin-1 entities, U+00A0..U+00FF in order.
const char* const kLatin1Names[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",    "copy",   "ordf",
    "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn", "sup2",   "sup3",   "acute",  "micro",
    "para",   "middot", "cedil",  "sup1",   "ordm",   "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave",
    "Aacute", "Acirc",  "Atilde", "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",
    "Igrave", "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde", "Ouml",
    "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",  "szlig",  "agrave", "aacute",
    "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil", "egrave", "eacute", "ecirc",  "euml",   "igrave",
    "iacute", "icirc",  "iuml",   "eth",    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide",
    "oslash", "ugrave", "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml"};

const std::unordered_map<std::string, uint32_t>& entity_table() {
  static const auto table = [] {
    std::unordered_map<std::string, uint32_t> t = {
        {"amp", '&'},       {"lt", '<'},        {"gt", '>'},        {"quot", '"'},      {"apos", '\''},
        {"ndash", 0x2013},  {"mdash", 0x2014},  {"lsquo", 0x2018},  {"rsquo", 0x2019},  {"sbquo", 0x201A},
        {"ldquo", 0x201C},  {"rdquo", 0x201D},  {"bdquo", 0x201E},  {"dagger", 0x2020}, {"Dagger", 0x2021},
        {"bull", 0x2022},   {"hellip", 0x2026}, {"permil", 0x2030}, {"prime", 0x2032},  {"lsaquo", 0x2039},
        {"rsaquo", 0x203A}, {"euro", 0x20AC},   {"trade", 0x2122},  {"larr", 0x2190},   {"rarr", 0x2192},
        {"uarr", 0x2191},   {"darr", 0x2193},   {"harr", 0x2194},   {"ensp", 0x2002},   {"emsp", 0x2003},
        {"thinsp", 0x2009}, {"zwnj", 0x200C},   {"zwj", 0x200D},    {"OElig", 0x152},   {"oelig", 0x153},
        {"Scaron", 0x160},  {"scaron", 0x161},  {"Yuml", 0x178},    {"fnof", 0x192},    {"circ", 0x2C6},
        {"tilde", 0x2DC},   {"minus", 0x2212},  {"le", 0x2264},     {"ge", 0x2265},     {"ne", 0x2260},
        {"infin", 0x221E},  {"hearts", 0x2665}, {"check", 0x2713},  {"alpha", 0x3B1},   {"beta", 0x3B2},
        {"gamma", 0x3B3},   {"delta", 0x3B4},   {"pi", 0x3C0},      {"mu", 0x3BC},      {"lambda", 0x3BB},
        {"sigma", 0x3C3},   {"omega", 0x3C9},   {"Omega", 0x3A9},   {"Delta", 0x394},
    };
    for (int i = 0; i < 96; ++i) t[kLatin1Names[i]] = 0xA0 + i;
    return t;
  }();
  return table;
}

void append_cp(std::string& out, uint32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  tokenizer::utf8_append(out, cp);
}

// Decodes the reference starting at text[i] == '&' into `out`; returns the bytes consumed (0: not one).
size_t entity_at(std::string_view text, size_t i, std::string& out) {
  size_t j = i + 1;
  if (j < text.size() && text[j] == '#') {
    bool hex = j + 1 < text.size() && (text[j + 1] == 'x' || text[j + 1] == 'X');
    size_t k = j + (hex ? 2 : 1);
    uint64_t cp = 0;
    size_t digits = 0;
    for (; k < text.size() && digits < 8; ++k, ++digits) {
      char c = text[k];
      int v = (c >= '0' && c <= '9')          ? c - '0'
              : (hex && c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (hex && c >= 'A' && c <= 'F') ? c - 'A' + 10
                                              : -1;
      if (v < 0) break;
      cp = cp * (hex ? 16 : 10) + v;
    }
    if (digits == 0) return 0;
    append_cp(out, static_cast<uint32_t>(std::min<uint64_t>(cp, 0x110000)));
    return (k < text.size() && text[k] == ';' ? k + 1 : k) - i;
  }
  size_t k = j;
  while (k < text.size() && k - j < 32 && std::isalnum(static_cast<unsigned char>(text[k]))) ++k;
  if (k == j) return 0;
  auto it = entity_table().find(std::string(text.substr(j, k - j)));
  if (it == entity_table().end()) return 0;
  append_cp(out, it->second);
  return (k < text.size() && text[k] == ';' ? k + 1 : k) - i;
}

const std::set<std::string> kSkipContent = {"script", "style", "noscript", "template", "head",
                                            "svg",    "math",  "iframe",   "object",   "canvas"};
const std::set<std::string> kParagraph = {"p",      "div",  "h1",    "h2",         "h3",      "h4",      "h5",
                                          "h6",     "ul",   "ol",    "table",      "section", "article", "header",
                                          "footer", "nav",  "aside", "blockquote", "pre",     "form",    "fieldset",
                                          "figure", "main", "dl",    "address",    "hr",      "details", "summary"};
const std::set<std::string> kLine = {"br", "li", "tr", "dt", "dd", "caption", "figcaption", "option", "title"};

// Accumulates visible text with HTML whitespace rules.
struct TextBuilder {
  std::string out;
  int pending_breaks = 0;  // 1: newline, 2: blank line, before the next text
  bool pending_space = false;

  void text(std::string_view s, bool pre) {
    for (char c : s) {
      bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
      if (pre) {
        flush_breaks();
        out += c == '\r' ? '\n' : c;
      } else if (ws) {
        pending_space = !out.empty();
      } else {
        flush_breaks();
        if (pending_space && !out.empty() && out.back() != '\n') out += ' ';
        pending_space = false;
        out += c;
      }
    }
  }
  void brk(int n) {
    if (!out.empty()) pending_breaks = std::max(pending_breaks, n);
    pending_space = false;
  }
  void flush_breaks() {
    if (pending_breaks > 0) out.append(static_cast<size_t>(pending_breaks), '\n');
    pending_breaks = 0;
  }
};

// Parses the tag at html[i] == '<'. Sets name (lower case) and closing; returns the index after '>'.
size_t tag_at(std::string_view html, size_t i, std::string* name, bool* closing) {
  size_t j = i + 1;
  *closing = j < html.size() && html[j] == '/';
  if (*closing) ++j;
  size_t k = j;
  while (k < html.size() && (std::isalnum(static_cast<unsigned char>(html[k])) || html[k] == '-' || html[k] == ':'))
    ++k;
  *name = lower(html.substr(j, k - j));
  // Skip attributes, honouring quotes (a '>' inside a quoted value does not end the tag).
  char quote = 0;
  for (; k < html.size(); ++k) {
    char c = html[k];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '>') {
      return k + 1;
    }
  }
  return html.size();
}

// Index after the closing </name> of a raw-text/skipped element, or the end of the input.
size_t skip_to_close(std::string_view html, size_t i, const std::string& name) {
  std::string lower_html_needle = "</" + name;
  while (i < html.size()) {
    size_t lt = html.find("</", i);
    if (lt == std::string_view::npos) return html.size();
    if (iequals(html.substr(lt, lower_html_needle.size()), lower_html_needle)) {
      size_t gt = html.find('>', lt);
      return gt == std::string_view::npos ? html.size() : gt + 1;
    }
    i = lt + 2;
  }
  return html.size();
}

}  // namespace

std::string html_entities_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '&') {
      size_t n = entity_at(text, i, out);
      if (n > 0) {
        i += n;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

std::string html_text(std::string_view html) {
  TextBuilder b;
  int pre_depth = 0;
  size_t i = 0;
  while (i < html.size()) {
    size_t lt = html.find('<', i);
    size_t end = lt == std::string_view::npos ? html.size() : lt;
    if (end > i) b.text(html_entities_decode(html.substr(i, end - i)), pre_depth > 0);
    if (lt == std::string_view::npos) break;
    if (html.compare(lt, 4, "<!--") == 0) {
      size_t close = html.find("-->", lt + 4);
      i = close == std::string_view::npos ? html.size() : close + 3;
      continue;
    }
    if (lt + 1 < html.size() && (html[lt + 1] == '!' || html[lt + 1] == '?')) {
      size_t gt = html.find('>', lt);
      i = gt == std::string_view::npos ? html.size() : gt + 1;
      continue;
    }
    if (lt + 1 >= html.size() || !(std::isalpha(static_cast<unsigned char>(html[lt + 1])) || html[lt + 1] == '/')) {
      b.text("<", pre_depth > 0);  // a lone '<' in text
      i = lt + 1;
      continue;
    }
    std::string name;
    bool closing = false;
    i = tag_at(html, lt, &name, &closing);
    bool self_closing = i >= 2 && html[i - 2] == '/';
    if (!closing && !self_closing && kSkipContent.count(name)) {
      i = skip_to_close(html, i, name);
      continue;
    }
    if (name == "pre" || name == "textarea") pre_depth = std::max(0, pre_depth + (closing ? -1 : 1));
    if (kParagraph.count(name)) b.brk(2);
    else if (kLine.count(name)) b.brk(1);
    else if (name == "td" || name == "th") b.pending_space = true;
  }
  return b.out;
}

}  // namespace hearth::data
