// The visible text of an HTML page: what a reader sees, without markup, scripts, styles or the <head>.
//
// Parsed by gumbo (Debian libgumbo-dev), an HTML5 parser that follows the spec's tokenizer and tree
// construction (https://html.spec.whatwg.org/#parsing), so broken markup, unclosed tags and every named
// character reference come out as a browser would see them. The tree is then walked: the contents of
// script/style/noscript/template/head/svg/math/iframe/object/canvas are skipped, block elements (p, div,
// h1-h6, li, tr, br, ...) end a line or paragraph, whitespace collapses as in normal flow except inside
// <pre>/<textarea>. A page nested more than 512 elements deep (where gumbo takes quadratic time; browsers cap
// the depth too) is read by a plain scan instead: the text between its tags, without structure.
#pragma once

#include <string>
#include <string_view>

namespace hearth::data {

// Visible text of `html` (valid UTF-8). Paragraphs are separated by a blank line.
std::string html_text(std::string_view html);

}  // namespace hearth::data
