// The small chat page hearth serve shows at GET /: one self-contained HTML file (inline CSS and JS, no
// external assets) that lists the models (base and adapters) from /v1/models, lets the user pick one, and
// streams replies from /v1/chat/completions: "Thinking…" until the first token, a Stop button that aborts the
// request (the partial reply stays), a marker on a reply cut by the token limit, ``` fenced code shown as code,
// an optional system prompt sent first. Model output is inserted as text only (never as HTML). An API key,
// when the server needs one, is typed into the page (a field as wide as the key, with Show/Hide) and kept in
// the browser's localStorage, as is the system prompt.
// Element ids used by tests: #model, #temperature, #max_tokens, #key, #key_show, #system, #clear, #status,
// #input, #send, #stop, #log (one .msg.user / .msg.assistant per turn, each with a .body; the assistant one has
// class "thinking" until its first token, data-finish, data-stopped="1" when stopped, .note.length /
// .note.stopped markers, data-done="1" when finished, and its text as received in the `rawText` property).
#pragma once

#include <string>

namespace hearth::serve {

// The page. Thread-safe (a constant).
const std::string& chat_page_html();

}  // namespace hearth::serve
