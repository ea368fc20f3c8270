// Interpreter of hearth's Jinja chat-template engine: renders a parsed template with given variables.
//
// Scoping follows jinja2: each `for` iteration and each macro call gets its own scope, so `set` inside a loop
// does not leak out (templates use namespace() for that); `if` does not open a scope. Undefined follows
// jinja2's default Undefined where templates rely on it (prints as "", iterates as empty, is falsy, `is
// defined` is false) and is more lenient in one place: an attribute or item of undefined is undefined
// instead of an UndefinedError. Globals: range, namespace, dict, raise_exception, strftime_now, and the
// loopcontrols extension's break/continue (transformers enables it).
#pragma once

#include <ctime>
#include <optional>
#include <string>

#include "chat/jinja_parser.h"
#include "chat/jinja_value.h"
#include "core/error.h"

namespace hearth::chat {

// Thrown by the template's raise_exception(message): a FormatError whose what() is
// "<origin>:<line>:<col>: raise_exception: <message>" and whose message() is the template's text as-is
// (for example to return to an API client).
class JinjaRaisedError : public FormatError {
 public:
  JinjaRaisedError(const std::string& where, std::string message)
      : FormatError(where + ": raise_exception: " + message), message_(std::move(message)) {}
  const std::string& message() const noexcept { return message_; }

 private:
  std::string message_;
};

struct JinjaRenderOptions {
  // The local time strftime_now() formats; the current time when empty (tests fix it).
  std::optional<std::tm> now;
};

// Checks that every filter and test the template names exists, as jinja2 does when compiling. Throws
// hearth::FormatError "<origin>:<line>:<col>: unknown filter 'x'" (or test).
void jinja_check_names(const JinjaSource& source, const JinjaBody& body);

// Renders `body` with `variables` (a dict Value) as the template's context. Throws hearth::FormatError
// "<origin>:<line>:<col>: <what>" for runtime errors (bad operand types, unknown functions, ...) and
// JinjaRaisedError for raise_exception. Reentrant: the tree is only read, so concurrent renders are safe.
std::string jinja_render(const JinjaSource& source, const JinjaBody& body, const Value& variables,
                         const JinjaRenderOptions& options);

}  // namespace hearth::chat
