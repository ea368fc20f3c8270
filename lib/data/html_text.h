// The visible text of an HTML page: what a reader sees, without markup, scripts, styles or the <head>.
//
// A forgiving scanner, not a conforming HTML5 parser (https://html.spec.whatwg.org/#parsing): tags are
// dropped, the contents of script/style/noscript/template/head/svg/math/iframe/object/canvas are skipped,
// block elements (p, div, h1-h6, li, tr, br, ...) end a line or paragraph, whitespace collapses as in
// normal flow except inside <pre>/<textarea>, and character references are decoded (numeric ones and the
// named ones of HTML 4 plus the common HTML5 punctuation; an unknown name is kept as written).
#pragma once

#include <string>
#include <string_view>

namespace hearth::data {

// Visible text of `html` (valid UTF-8). Paragraphs are separated by a blank line.
std::string html_text(std::string_view html);
// Decodes character references (&amp; &#233; &#x1F600; ...) in `text`.
std::string html_entities_decode(std::string_view text);

}  // namespace hearth::data
