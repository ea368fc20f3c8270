// Lexer for hearth's Jinja chat-template engine: source text -> tokens, with jinja2's whitespace control.
//
// Implements the jinja2 lexer as Hugging Face transformers configures it: trim_blocks=True (one newline after a
// block or comment tag is dropped), lstrip_blocks=True (spaces/tabs before a block or comment tag on its own
// line are dropped), `{%-`/`-%}` (and `{{-`, `{#-`, ...) strip all whitespace on that side, `{%+`/`+%}` turn
// the trimming off, `{% raw %}` passes text through, `\r\n` becomes `\n` and one trailing newline of the source
// is dropped (keep_trailing_newline=False). Comments produce no tokens. Not supported: line statements,
// custom delimiters. Specified by the jinja2 docs, "Whitespace Control" and "Template Designer Documentation".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::chat {

struct JinjaToken {
  enum class Kind {
    kText,        // template data, after whitespace control (text)
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,        // identifier or keyword (text)
    kString,      // string literal, unescaped (text)
    kInt,         // integer literal (int_value)
    kFloat,       // float literal (float_value)
    kOperator,    // punctuation: + - * / // % ** ~ == != < <= > >= = . , : | ( ) [ ] { } (text)
    kEnd          // end of the source
  };
  Kind kind;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  size_t offset = 0;  // into the normalized source (see JinjaSource)
};

// A template's source after newline normalization, with its name for error messages.
struct JinjaSource {
  std::string origin;
  std::string text;
  // "<origin>:<line>:<col>" for an offset into `text` (1-based line and column, columns in bytes).
  std::string where(size_t offset) const;
};

// Normalizes newlines ("\r\n" and "\r" -> "\n") and drops one trailing newline, as jinja2 does.
JinjaSource jinja_source(const std::string& text, const std::string& origin);

// Splits the source into tokens, ending with kEnd. Throws hearth::FormatError "<origin>:<line>:<col>: ..." for
// an unterminated tag, comment, raw block or string, or a character that starts no token.
std::vector<JinjaToken> jinja_lex(const JinjaSource& source);

}  // namespace hearth::chat
