// Server-Sent Events framing for streamed OpenAI responses: each event is one "data: <json>" line and a
// blank line; a stream ends with "data: [DONE]". (https://html.spec.whatwg.org/multipage/server-sent-events.html)
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace hearth::serve {

// "data: <compact json>\n\n". Invalid UTF-8 in strings is replaced (U+FFFD), never thrown on.
inline std::string sse_event(const nlohmann::json& j) {
  return "data: " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

inline const char* const kSseDone = "data: [DONE]\n\n";

}  // namespace hearth::serve
