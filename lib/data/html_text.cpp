#include "data/html_text.h"

#include <gumbo.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <vector>

namespace hearth::data {
namespace {

bool tag_in(GumboTag tag, std::initializer_list<GumboTag> set) {
  return std::find(set.begin(), set.end(), tag) != set.end();
}

bool skip_content(GumboTag t) {
  return tag_in(t, {GUMBO_TAG_SCRIPT, GUMBO_TAG_STYLE, GUMBO_TAG_NOSCRIPT, GUMBO_TAG_TEMPLATE, GUMBO_TAG_HEAD,
                    GUMBO_TAG_SVG, GUMBO_TAG_MATH, GUMBO_TAG_IFRAME, GUMBO_TAG_OBJECT, GUMBO_TAG_CANVAS});
}

bool paragraph(GumboTag t) {
  return tag_in(t, {GUMBO_TAG_P,        GUMBO_TAG_DIV,     GUMBO_TAG_H1,         GUMBO_TAG_H2,     GUMBO_TAG_H3,
                    GUMBO_TAG_H4,       GUMBO_TAG_H5,      GUMBO_TAG_H6,         GUMBO_TAG_UL,     GUMBO_TAG_OL,
                    GUMBO_TAG_TABLE,    GUMBO_TAG_SECTION, GUMBO_TAG_ARTICLE,    GUMBO_TAG_HEADER, GUMBO_TAG_FOOTER,
                    GUMBO_TAG_NAV,      GUMBO_TAG_ASIDE,   GUMBO_TAG_BLOCKQUOTE, GUMBO_TAG_PRE,    GUMBO_TAG_FORM,
                    GUMBO_TAG_FIELDSET, GUMBO_TAG_FIGURE,  GUMBO_TAG_MAIN,       GUMBO_TAG_DL,     GUMBO_TAG_ADDRESS,
                    GUMBO_TAG_HR,       GUMBO_TAG_DETAILS, GUMBO_TAG_SUMMARY});
}

bool line(GumboTag t) {
  return tag_in(t, {GUMBO_TAG_BR, GUMBO_TAG_LI, GUMBO_TAG_TR, GUMBO_TAG_DT, GUMBO_TAG_DD, GUMBO_TAG_CAPTION,
                    GUMBO_TAG_FIGCAPTION, GUMBO_TAG_OPTION, GUMBO_TAG_TITLE});
}

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

// The boundary of an element, on the way in and on the way out.
void element_edge(GumboTag tag, TextBuilder& b) {
  if (paragraph(tag)) b.brk(2);
  else if (line(tag)) b.brk(1);
  else if (tag == GUMBO_TAG_TD || tag == GUMBO_TAG_TH) b.pending_space = true;
}

// Gumbo checks the stack of open elements for each start tag, so a page nested N elements deep costs O(N^2)
// (100,000 nested <div>s: 30 s). Browsers cap the depth (Blink at 512); here a page nested deeper than this,
// counting elements whose end tag may not be left out, is read by the plain scan below instead.
constexpr int kMaxNesting = 512;

bool name_in(std::string_view name, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), name) != set.end();
}

// Whether the elements of `html` nest deeper than kMaxNesting (a linear scan of its tags).
bool nesting_too_deep(std::string_view html) {
  int depth = 0;
  for (size_t i = html.find('<'); i != std::string_view::npos && i + 1 < html.size(); i = html.find('<', i + 1)) {
    if (html.compare(i, 4, "<!--") == 0) {
      i = html.find("-->", i);
      if (i == std::string_view::npos) break;
      continue;
    }
    bool closing = html[i + 1] == '/';
    size_t b = i + (closing ? 2 : 1), e = b;
    while (e < html.size() && std::isalnum(static_cast<unsigned char>(html[e]))) ++e;
    if (e == b) continue;
    std::string name(html.substr(b, e - b));
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t gt = html.find('>', e);
    if (gt == std::string_view::npos) break;
    if (name_in(name,
                {"area",   "base",  "br",    "col",   "embed",    "hr", "img", "input",  "link",     "meta", "param",
                 "source", "track", "wbr",   "p",     "li",       "dt", "dd",  "option", "optgroup", "tr",   "td",
                 "th",     "tbody", "thead", "tfoot", "colgroup", "rb", "rt",  "rp",     "html",     "head", "body"}) ||
        html[gt - 1] == '/')
      continue;
    depth = closing ? std::max(0, depth - 1) : depth + 1;
    if (depth > kMaxNesting) return true;
  }
  return false;
}

// Text between the tags, for pages too deeply nested for the parser: no structure, no references decoded.
std::string tags_stripped(std::string_view html) {
  TextBuilder b;
  for (size_t i = 0; i < html.size();) {
    size_t lt = html.find('<', i);
    b.text(html.substr(i, (lt == std::string_view::npos ? html.size() : lt) - i), false);
    if (lt == std::string_view::npos) break;
    size_t gt = html.find('>', lt);
    if (gt == std::string_view::npos) break;
    b.pending_space = true;
    i = gt + 1;
  }
  return b.out;
}

struct OutputDeleter {
  void operator()(GumboOutput* o) const { gumbo_destroy_output(&kGumboDefaultOptions, o); }
};

}  // namespace

std::string html_text(std::string_view html) {
  if (nesting_too_deep(html)) return tags_stripped(html);
  GumboOptions options = kGumboDefaultOptions;
  options.max_errors = 0;  // parse errors are not needed; recording them copies the open-element stack each time
  std::unique_ptr<GumboOutput, OutputDeleter> doc(gumbo_parse_with_options(&options, html.data(), html.size()));
  TextBuilder b;
  // An explicit stack rather than recursion: a page of deeply nested elements must not overflow ours.
  struct Frame {
    const GumboNode* node;
    bool leaving;
  };
  std::vector<Frame> stack{{doc->document, false}};
  int pre_depth = 0;
  while (!stack.empty()) {
    Frame f = stack.back();
    stack.pop_back();
    const GumboNode* n = f.node;
    if (n->type == GUMBO_NODE_TEXT || n->type == GUMBO_NODE_WHITESPACE || n->type == GUMBO_NODE_CDATA) {
      b.text(n->v.text.text, pre_depth > 0);
      continue;
    }
    if (n->type != GUMBO_NODE_ELEMENT && n->type != GUMBO_NODE_DOCUMENT) continue;  // comments; templates
    const GumboVector& children = n->type == GUMBO_NODE_DOCUMENT ? n->v.document.children : n->v.element.children;
    const GumboTag tag = n->type == GUMBO_NODE_ELEMENT ? n->v.element.tag : GUMBO_TAG_UNKNOWN;
    const bool pre = tag == GUMBO_TAG_PRE || tag == GUMBO_TAG_TEXTAREA;
    if (f.leaving) {
      if (pre) --pre_depth;
      element_edge(tag, b);
      continue;
    }
    if (skip_content(tag)) continue;
    element_edge(tag, b);
    if (pre) ++pre_depth;
    stack.push_back({n, true});
    for (unsigned i = children.length; i-- > 0;)
      stack.push_back({static_cast<const GumboNode*>(children.data[i]), false});
  }
  return b.out;
}

}  // namespace hearth::data
