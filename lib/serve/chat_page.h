// The small chat page hearth serve shows at GET /: one self-contained HTML file (inline CSS and JS, no
// external assets) that lists the models (base and adapters) from /v1/models, lets the user pick one, and
// streams replies from /v1/chat/completions. An API key, when the server needs one, is typed into the page
// and kept in the browser's localStorage. Element ids used by tests: #model, #key, #temperature, #input,
// #send, #log (one .msg.user / .msg.assistant per turn; the assistant one gets data-done="1" when finished).
#pragma once

#include <string>

namespace hearth::serve {

// The page. Thread-safe (a constant).
const std::string& chat_page_html();

}  // namespace hearth::serve
