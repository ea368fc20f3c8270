// Parser for hearth's Jinja chat-template engine: tokens -> syntax tree (expressions and statements).
//
// Follows jinja2's grammar and operator precedence (jinja2/parser.py as documented in "Template Designer
// Documentation"): `x if c else y` < or < and < not < comparisons/in < + - < ~ < * / // % < ** < unary - +
// < filters `|f`, tests `is t` and calls < postfix `.a`, `[i]`, `[a:b:c]`. Statements: if/elif/else,
// for (with `if` filter and `else`), set (expression, tuple and `ns.attr` targets, block form), macro,
// filter blocks, generation blocks, break/continue. Not supported: extends/block/include/import, call blocks,
// `recursive` loops, `*args`.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_lexer.h"
#include "chat/jinja_value.h"

namespace hearth::chat {

struct JinjaExpr;
using JinjaExprPtr = std::unique_ptr<JinjaExpr>;

struct JinjaExpr {
  enum class Kind {
    kLiteral,    // value
    kName,       // name
    kList,       // [args...]
    kTuple,      // (args...), evaluated as a list
    kDict,       // {args[0]: args[1], args[2]: args[3], ...}
    kGetAttr,    // args[0].name (falls back to args[0]["name"])
    kGetItem,    // args[0][args[1]]
    kSlice,      // args[0][args[1]:args[2]:args[3]], omitted parts null
    kCall,       // args[0](args[1..], kwargs)
    kFilter,     // args[0] | name(args[1..], kwargs); args[0] null inside {% filter %}
    kTest,       // args[0] is [not] name(args[1..]); negated for `is not`
    kUnary,      // name ("-", "+", "not") applied to args[0]
    kBinary,     // args[0] name args[1]: + - * / // % ** ~ and or
    kCompare,    // args[0] ops[0] args[1] ops[1] args[2] ...: == != < <= > >= in notin
    kCondition,  // args[1] if args[0] else args[2] (args[2] null: undefined)
  };
  Kind kind;
  size_t offset = 0;
  Value value;
  std::string name;
  std::vector<JinjaExprPtr> args;
  std::vector<std::pair<std::string, JinjaExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct JinjaNode;
using JinjaNodePtr = std::unique_ptr<JinjaNode>;
using JinjaBody = std::vector<JinjaNodePtr>;

struct JinjaNode {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // branches: (condition, body)..., condition null for else
    kFor,          // for target in expr [if condition]: body [else: else_body]
    kSet,          // set target = expr
    kSetBlock,     // set target: body rendered to a string
    kMacro,        // macro name(params): body
    kFilterBlock,  // filter expr (a kFilter chain with a null innermost operand): body
    kScope,        // generation block: body rendered in place
    kBreak,
    kContinue,
  };
  Kind kind;
  size_t offset = 0;
  std::string text;
  JinjaExprPtr expr;
  JinjaExprPtr target;     // kName, kTuple of kName, or kGetAttr on a kName
  JinjaExprPtr condition;  // kFor's `if`
  std::vector<std::pair<JinjaExprPtr, JinjaBody>> branches;
  JinjaBody body;
  JinjaBody else_body;
  std::string name;
  std::vector<std::pair<std::string, JinjaExprPtr>> params;  // default null when none
};

// Parses a token stream (from jinja_lex) into the template body. Throws hearth::FormatError
// "<origin>:<line>:<col>: <what>; expected <x>, got <y>" for syntax errors, unknown tags and unclosed blocks.
JinjaBody jinja_parse(const JinjaSource& source, const std::vector<JinjaToken>& tokens);

}  // namespace hearth::chat
