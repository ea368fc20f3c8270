// Fuzz target: OpenAI request bodies (serve/request.h, request_parse) as the server receives them on
// /v1/chat/completions and /v1/completions, and what the server does next with an accepted body: the chat
// messages and tools rendered by a real chat template (Qwen2.5's, which uses tools, tool_calls and tojson) and
// the prompts encoded by a real tokenizer (stories260K), as serve/completions.cpp's prompts_encode does.
//
// Every input is parsed for both endpoints, and as Ollama's /api/chat, /api/generate, /api/embed and /api/show
// bodies (serve/ollama_request.h; an accepted chat or generate body's prompts go through the same rendering and
// encoding). Every bad body must be an ApiError (an HTTP 4xx answer) and a
// template that cannot render the messages a FormatError (which the server turns into a 400); anything else —
// it would reach the HTTP layer as a 500 or take the server down — is a finding. request.cpp is compiled into
// this target on its own (ollama_request.cpp too): the rest of lib/serve needs libtorch.
// Seeds: fuzz/seeds/request (bodies from tests/serve).
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "fuzz_util.h"
#include "serve/ollama_request.h"
#include "serve/request.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;
using namespace hearth::fuzz;

namespace {

struct Model {
  tokenizer::Tokenizer tok = tokenizer::Tokenizer::load(HEARTH_SOURCE_DIR "/models/stories260K");
  nlohmann::json config;
  Model() {
    std::ifstream in(HEARTH_SOURCE_DIR "/tests/fixtures/chat_templates/qwen25.jinja", std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) fuzz_fail("request", "setup", "cannot read tests/fixtures/chat_templates/qwen25.jinja");
    config = {{"chat_template", text.str()}, {"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"}};
  }
};
const Model& model() {
  static const Model m;
  return m;
}

void prompts_encode(const serve::CompletionRequest& r) {
  const Model& m = model();
  if (r.endpoint == serve::Endpoint::kChat) {
    try {
      const std::string text = chat::chat_template_apply(m.config, r.messages, true, r.tools, "fuzz/qwen25");
      m.tok.encode(text, {false, true});
    } catch (const FormatError&) {  // the server answers 400: the template cannot render these messages
    }
  }
  for (const auto& p : r.prompts) m.tok.encode(p);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  model();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(fuzz_bytes(data, size));
  for (auto endpoint : {serve::Endpoint::kChat, serve::Endpoint::kCompletions}) {
    fuzz_expect_errors("request", [&] {
      serve::CompletionRequest r;
      try {
        r = serve::request_parse(body, endpoint, 4096, 8);
      } catch (const serve::ApiError& e) {
        fuzz_require(e.status >= 400 && e.status < 500, "request", "request_parse answered a non-4xx status");
        return;
      }
      prompts_encode(r);
    });
  }
  // The same body as Ollama's routes read it.
  for (auto parse : {serve::ollama_chat_parse, serve::ollama_generate_parse}) {
    fuzz_expect_errors("request", [&] {
      serve::OllamaGeneration g;
      try {
        g = parse(body, 4096);
      } catch (const serve::ApiError& e) {
        fuzz_require(e.status >= 400 && e.status < 500, "request", "an Ollama parser answered a non-4xx status");
        return;
      }
      fuzz_require(g.request.n == 1 && !g.model.empty(), "request", "an Ollama request without a model or with n != 1");
      if (!g.load_only) prompts_encode(g.request);
    });
  }
  fuzz_expect_errors("request", [&] {
    try {
      serve::ollama_embed_parse(body);
    } catch (const serve::ApiError& e) {
      fuzz_require(e.status >= 400 && e.status < 500, "request", "ollama_embed_parse answered a non-4xx status");
    }
    try {
      serve::ollama_show_parse(body);
    } catch (const serve::ApiError& e) {
      fuzz_require(e.status >= 400 && e.status < 500, "request", "ollama_show_parse answered a non-4xx status");
    }
  });
  return 0;
}
