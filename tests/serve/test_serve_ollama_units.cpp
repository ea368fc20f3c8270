// Unit tests of the Ollama translation layer (serve/ollama_request.h, and the pure helpers of ollama_api.h and
// ollama_models.h): Ollama bodies -> the OpenAI endpoints' CompletionRequest, option by option, and every refusal with
// the field it names. Expected values are written out by hand from Ollama's docs/api.md and docs/modelfile.md.
#include <catch2/catch.hpp>

#include "constrain/matcher.h"

#include "serve/ollama_api.h"
#include "serve/ollama_models.h"
#include "serve/ollama_request.h"

using namespace hearth;
using namespace hearth::serve;
using ojson = nlohmann::ordered_json;

namespace {

constexpr int kLimit = 1000;  // max_tokens_limit

ojson chat_body(ojson extra = ojson::object()) {
  ojson b = {{"model", "stories260K"}, {"messages", {{{"role", "user"}, {"content", "Hi"}}}}};
  b.update(extra);
  return b;
}

// The ApiError a body raises (status, param, message), or {0, "", ""} when it parses.
struct Refusal {
  int status = 0;
  std::string param, message;
};
template <typename Parse>
Refusal refusal(Parse parse, const ojson& body) {
  try {
    parse(body.dump());
  } catch (const ApiError& e) {
    return {e.status, e.param, e.what()};
  }
  return {};
}
Refusal chat_refusal(const ojson& body) {
  return refusal([](const std::string& b) { ollama_chat_parse(b, kLimit); }, body);
}
Refusal generate_refusal(const ojson& body) {
  return refusal([](const std::string& b) { ollama_generate_parse(b, kLimit); }, body);
}
std::string chat_param(const ojson& extra) { return chat_refusal(chat_body(extra)).param; }

}  // namespace

TEST_CASE("ollama_chat_parse: messages, Ollama's defaults and the served model name", "[serve][ollama]") {
  auto g = ollama_chat_parse(chat_body({{"model", "stories260K:latest"},
                                        {"messages",
                                         {{{"role", "system"}, {"content", "Be brief."}},
                                          {{"role", "user"}, {"content", "Hi"}, {"images", ojson::array()}},
                                          {{"role", "assistant"}, {"content", "Hello"}, {"tool_calls", nullptr}},
                                          {{"role", "user"}}}}})
                                 .dump(),
                             kLimit);
  CHECK(g.chat);
  CHECK(g.stream);  // Ollama streams unless told not to
  CHECK_FALSE(g.load_only);
  CHECK(g.model == "stories260K:latest");
  const auto& r = g.request;
  CHECK(r.model == "stories260K");
  CHECK(r.endpoint == Endpoint::kChat);
  CHECK(r.n == 1);
  CHECK(r.messages == ojson::parse(R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"},
                                       {"role":"assistant","content":"Hello"},{"role":"user","content":""}])"));
  // Ollama's defaults (docs/modelfile.md), not OpenAI's
  CHECK(r.sampling.temperature == 0.8f);
  CHECK(r.sampling.top_k == 40);
  CHECK(r.sampling.top_p == 0.9f);
  CHECK(r.sampling.min_p == 0.0f);
  CHECK(r.sampling.repeat_penalty == 1.1f);
  CHECK(r.sampling.repeat_last_n == 64);
  CHECK_FALSE(r.seed_given);
  CHECK_FALSE(r.max_tokens);
  CHECK_FALSE(r.ctx);
  CHECK(r.stop.empty());
  CHECK(r.logprobs == -1);

  CHECK_FALSE(ollama_chat_parse(chat_body({{"stream", false}}).dump(), kLimit).stream);
  // No messages: Ollama's "load the model" call.
  CHECK(ollama_chat_parse(R"({"model":"m","messages":[]})", kLimit).load_only);
  CHECK(ollama_chat_parse(R"({"model":"m"})", kLimit).load_only);
}

TEST_CASE("ollama_options_apply: each option reaches the request", "[serve][ollama]") {
  auto g = ollama_chat_parse(chat_body({{"options",
                                         {{"temperature", 0},
                                          {"top_p", 0.5},
                                          {"top_k", 7},
                                          {"min_p", 0.1},
                                          {"seed", 42},
                                          {"num_predict", 17},
                                          {"stop", {"a", "", "b"}},
                                          {"repeat_penalty", 1.3},
                                          {"repeat_last_n", 8},
                                          {"presence_penalty", 0.5},
                                          {"frequency_penalty", -0.5},
                                          {"num_ctx", 128},
                                          {"mirostat", nullptr}}}})
                                 .dump(),
                             kLimit);
  const auto& r = g.request;
  CHECK(r.sampling.temperature == 0.0f);
  CHECK(r.sampling.top_p == 0.5f);
  CHECK(r.sampling.top_k == 7);
  CHECK(r.sampling.min_p == 0.1f);
  CHECK(r.seed_given);
  CHECK(r.sampling.seed == 42);
  CHECK(r.max_tokens == 17);
  CHECK(r.stop == std::vector<std::string>{"a", "b"});  // empty strings stop nothing
  CHECK(r.sampling.repeat_penalty == 1.3f);
  CHECK(r.sampling.repeat_last_n == 8);
  CHECK(r.sampling.presence_penalty == 0.5f);
  CHECK(r.sampling.frequency_penalty == -0.5f);
  CHECK(r.ctx == 128);

  auto with = [](const ojson& options) {
    return ollama_chat_parse(chat_body({{"options", options}}).dump(), kLimit).request;
  };
  CHECK(with({{"stop", "x"}}).stop == std::vector<std::string>{"x"});
  CHECK_FALSE(with({{"num_predict", -1}}).max_tokens);  // no limit: up to the context
  CHECK_FALSE(with({{"num_predict", -2}}).max_tokens);  // fill the context
  CHECK_FALSE(with({{"seed", -1}}).seed_given);         // Ollama's "random"
  CHECK(with({{"repeat_last_n", -1}}).sampling.repeat_last_n == std::numeric_limits<int>::max());  // whole context
  CHECK(with({{"repeat_last_n", 0}}).sampling.repeat_last_n == 0);
}

TEST_CASE("ollama options: an unsupported key or a bad value is a 400 naming options.KEY", "[serve][ollama]") {
  for (const char* key : {"mirostat", "num_gpu", "num_thread", "typical_p", "penalize_newline", "num_keep", "tfs_z"}) {
    INFO(key);
    auto r = chat_refusal(chat_body({{"options", {{key, 1}}}}));
    CHECK(r.status == 400);
    CHECK(r.param == std::string("options.") + key);
    CHECK(r.message.find(std::string("options.") + key) != std::string::npos);
  }
  CHECK(chat_param({{"options", {{"temperature", -1}}}}) == "options.temperature");
  CHECK(chat_param({{"options", {{"temperature", "hot"}}}}) == "options.temperature");
  CHECK(chat_param({{"options", {{"top_p", 0}}}}) == "options.top_p");
  CHECK(chat_param({{"options", {{"top_p", 1.5}}}}) == "options.top_p");
  CHECK(chat_param({{"options", {{"top_k", -1}}}}) == "options.top_k");
  CHECK(chat_param({{"options", {{"top_k", 2.5}}}}) == "options.top_k");
  CHECK(chat_param({{"options", {{"min_p", 2}}}}) == "options.min_p");
  CHECK(chat_param({{"options", {{"seed", 1.5}}}}) == "options.seed");
  CHECK(chat_param({{"options", {{"num_predict", 0}}}}) == "options.num_predict");
  CHECK(chat_param({{"options", {{"num_predict", -3}}}}) == "options.num_predict");
  CHECK(chat_param({{"options", {{"num_predict", kLimit + 1}}}}) == "options.num_predict");
  CHECK(chat_param({{"options", {{"stop", {1}}}}}) == "options.stop");
  CHECK(chat_param({{"options", {{"stop", std::vector<std::string>(17, "x")}}}}) == "options.stop");
  CHECK(chat_param({{"options", {{"repeat_penalty", 0}}}}) == "options.repeat_penalty");
  CHECK(chat_param({{"options", {{"repeat_last_n", -2}}}}) == "options.repeat_last_n");
  CHECK(chat_param({{"options", {{"presence_penalty", 3}}}}) == "options.presence_penalty");
  CHECK(chat_param({{"options", {{"frequency_penalty", -3}}}}) == "options.frequency_penalty");
  CHECK(chat_param({{"options", {{"num_ctx", 0}}}}) == "options.num_ctx");
  CHECK(chat_param({{"options", {{"seed", 18446744073709551615ull}}}}) == "options.seed");
  CHECK(chat_param({{"options", "fast"}}) == "options");
}

TEST_CASE("ollama format: json and schemas become the reply's grammar, anything else a 400 naming format",
          "[serve][ollama]") {
  auto accepts = [](const CompletionRequest& r, const std::string& text) {
    REQUIRE(r.grammar);
    hearth::constrain::Matcher m(*r.grammar);
    auto st = m.start();
    return m.advance(st, text) && hearth::constrain::Matcher::accepting(st);
  };
  CompletionRequest json_mode;
  ollama_format_constraint(ojson("json"), json_mode);
  CHECK(accepts(json_mode, R"({"a":[1,"x"]})"));
  CHECK_FALSE(accepts(json_mode, "42"));
  CompletionRequest schema;
  ollama_format_constraint(ojson::parse(R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],
    "additionalProperties":false})"), schema);
  CHECK(accepts(schema, R"({"a":7})"));
  CHECK_FALSE(accepts(schema, R"({"a":"7"})"));
  for (const auto& format : {ojson(true), ojson("yaml"), ojson::parse(R"({"type":"string","pattern":"a+"})")}) {
    INFO(format.dump());
    auto r = chat_refusal(chat_body({{"format", format}}));
    CHECK(r.status == 400);
    CHECK(r.param == "format");
  }
  CHECK_THAT(chat_refusal(chat_body({{"format", ojson::parse(R"({"type":"string","pattern":"a+"})")}})).message,
             Catch::Contains("keyword 'pattern' is not supported"));
  CHECK(chat_refusal(chat_body({{"format", ""}})).status == 0);
  CHECK(chat_refusal(chat_body({{"format", nullptr}})).status == 0);
  CompletionRequest none;
  ollama_format_constraint(ojson(""), none);
  CHECK(none.grammar == nullptr);
}

TEST_CASE("ollama_chat_parse: fields hearth does not implement are refused unless they ask for nothing",
          "[serve][ollama]") {
  CHECK(chat_param({{"think", true}}) == "think");
  CHECK(chat_param({{"think", "high"}}) == "think");
  CHECK(chat_refusal(chat_body({{"think", false}})).status == 0);
  CHECK(chat_param({{"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}}}) == "tools");
  CHECK(chat_refusal(chat_body({{"tools", ojson::array()}})).status == 0);
  CHECK(chat_refusal(chat_body({{"keep_alive", "5m"}})).status == 0);  // no effect: the model stays loaded
  CHECK(chat_refusal(chat_body({{"keep_alive", 0}})).status == 0);
  CHECK(chat_param({{"keep_alive", ojson::object()}}) == "keep_alive");
  CHECK(chat_param({{"template", "{{ .Prompt }}"}}) == "template");  // not a /api/chat field
  CHECK(chat_param({{"stream", "yes"}}) == "stream");
  CHECK(chat_param({{"messages", {{{"role", "user"}, {"content", "Hi"}, {"images", {"iVBORw0KGgo="}}}}}}) ==
        "messages[0].images");
  CHECK(chat_param({{"messages", {{{"role", "assistant"}, {"tool_calls", {{{"function", {{"name", "f"}}}}}}}}}}) ==
        "messages[0].tool_calls");
  CHECK(chat_param({{"messages", {{{"role", "user"}, {"content", "Hi"}, {"thinking", "hmm"}}}}}) ==
        "messages[0].thinking");
  CHECK(chat_param({{"messages", {{{"role", "user"}, {"content", "Hi"}, {"name", "x"}}}}}) == "messages[0].name");
  CHECK(chat_param({{"messages", {{{"role", "robot"}, {"content", "Hi"}}}}}) == "messages[0].role");
  CHECK(chat_param({{"messages", {{{"content", "Hi"}}}}}) == "messages[0].role");
  CHECK(chat_param({{"messages", {{{"role", "user"}, {"content", 7}}}}}) == "messages[0].content");
  CHECK(chat_param({{"messages", "Hi"}}) == "messages");
  CHECK(chat_param({{"model", ""}}) == "model");
  CHECK(chat_param({{"model", 3}}) == "model");
  // logprobs as the OpenAI chat endpoint takes them
  CHECK(ollama_chat_parse(chat_body({{"logprobs", true}, {"top_logprobs", 3}}).dump(), kLimit).request.logprobs == 3);
  CHECK(ollama_chat_parse(chat_body({{"logprobs", true}}).dump(), kLimit).request.logprobs == 0);
  CHECK(chat_param({{"top_logprobs", 3}}) == "top_logprobs");
  CHECK(chat_param({{"logprobs", true}, {"top_logprobs", 21}}) == "top_logprobs");
  // unknown fields, malformed bodies
  auto unknown = chat_refusal(chat_body({{"n", 2}}));
  CHECK(unknown.status == 400);
  CHECK(unknown.param == "n");
  CHECK(refusal([](const std::string& b) { ollama_chat_parse(b, kLimit); }, ojson("[1]")).status == 400);
  CHECK_THROWS_AS(ollama_chat_parse("{\"model\": ", kLimit), ApiError);
  CHECK_THROWS_AS(ollama_chat_parse("[]", kLimit), ApiError);
}

TEST_CASE("ollama_generate_parse: the chat template with system, or raw", "[serve][ollama]") {
  auto g = ollama_generate_parse(R"({"model":"m","prompt":"Hi","system":"Be brief.","stream":false})", kLimit);
  CHECK_FALSE(g.chat);
  CHECK_FALSE(g.stream);
  CHECK(g.request.endpoint == Endpoint::kChat);
  CHECK(g.request.messages ==
        ojson::parse(R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}])"));
  CHECK(g.request.prompts.empty());

  auto raw = ollama_generate_parse(R"({"model":"m","prompt":"[INST] Hi [/INST]","raw":true})", kLimit);
  CHECK(raw.request.endpoint == Endpoint::kCompletions);
  CHECK(raw.request.prompts == std::vector<std::string>{"[INST] Hi [/INST]"});
  CHECK(raw.request.messages.is_null());

  CHECK(ollama_generate_parse(R"({"model":"m"})", kLimit).load_only);
  CHECK(ollama_generate_parse(R"({"model":"m","prompt":""})", kLimit).load_only);
  CHECK_FALSE(ollama_generate_parse(R"({"model":"m","system":"S"})", kLimit).load_only);

  CHECK(generate_refusal({{"model", "m"}, {"prompt", "Hi"}, {"raw", true}, {"system", "S"}}).param == "system");
  CHECK(generate_refusal({{"model", "m"}, {"prompt", "Hi"}, {"images", {"aGk="}}}).param == "images");
  CHECK(generate_refusal({{"model", "m"}, {"prompt", "Hi"}, {"suffix", "end"}}).param == "suffix");
  CHECK(generate_refusal({{"model", "m"}, {"prompt", "Hi"}, {"template", "{{ .Prompt }}"}}).param == "template");
  CHECK(generate_refusal({{"model", "m"}, {"prompt", "Hi"}, {"context", {1, 2, 3}}}).param == "context");
  CHECK(generate_refusal({{"model", "m"}, {"prompt", "Hi"}, {"messages", ojson::array()}}).param == "messages");
  CHECK(generate_refusal({{"model", "m"}, {"prompt", 5}}).param == "prompt");
  CHECK(generate_refusal({{"model", "m"}, {"prompt", "Hi"}, {"raw", "yes"}}).param == "raw");
  for (const auto& neutral : {ojson{{"suffix", ""}}, ojson{{"template", ""}}, ojson{{"context", ojson::array()}},
                              ojson{{"images", nullptr}}, ojson{{"think", false}}, ojson{{"keep_alive", -1}}}) {
    ojson b = {{"model", "m"}, {"prompt", "Hi"}};
    b.update(neutral);
    INFO(b.dump());
    CHECK(generate_refusal(b).status == 0);
  }
}

TEST_CASE("ollama_embed_parse and ollama_show_parse", "[serve][ollama]") {
  auto e = ollama_embed_parse(R"({"model":"m:latest","input":["a","b"],"truncate":false,"options":{"num_ctx":8}})");
  CHECK(e.model == "m:latest");
  CHECK(e.name == "m");
  CHECK(e.inputs == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(e.truncate);
  CHECK(e.ctx == 8);
  CHECK(ollama_embed_parse(R"({"model":"m","input":"a"})").inputs == std::vector<std::string>{"a"});
  CHECK(ollama_embed_parse(R"({"model":"m","input":"a"})").truncate);
  CHECK(ollama_embed_parse(R"({"model":"m","input":[]})").inputs.empty());
  CHECK(ollama_embed_parse(R"({"model":"m","input":"a","dimensions":64})").dimensions == 64);
  auto embed_param = [](const ojson& b) {
    return refusal([](const std::string& s) { ollama_embed_parse(s); }, b).param;
  };
  CHECK(embed_param({{"model", "m"}, {"input", ""}}) == "input");
  CHECK(embed_param({{"model", "m"}, {"input", {"a", 1}}}) == "input");
  CHECK(embed_param({{"model", "m"}, {"input", "a"}, {"options", {{"temperature", 0}}}}) == "options.temperature");
  CHECK(embed_param({{"model", "m"}, {"input", "a"}, {"truncate", 1}}) == "truncate");
  CHECK(embed_param({{"model", "m"}, {"input", "a"}, {"prompt", "a"}}) == "prompt");
  CHECK(embed_param({{"input", "a"}}) == "model");

  CHECK(ollama_show_parse(R"({"model":"m:latest","verbose":true})") == "m:latest");
  CHECK(ollama_show_parse(R"({"name":"m"})") == "m");
  CHECK_THROWS_AS(ollama_show_parse(R"({})"), ApiError);
  CHECK_THROWS_AS(ollama_show_parse(R"({"model":"m","system":"S"})"), ApiError);
}

TEST_CASE("ollama names, errors, times and sizes", "[serve][ollama]") {
  CHECK(ollama_model_name("stories260K:latest") == "stories260K");
  CHECK(ollama_model_name("stories260K") == "stories260K");
  CHECK(ollama_model_name("llama3:8b") == "llama3:8b");
  CHECK(ollama_model_name(":latest") == ":latest");
  CHECK(ollama_error_body(ApiError(404, "model 'x' not found")) == nlohmann::json{{"error", "model 'x' not found"}});
  using namespace std::chrono;
  CHECK(ollama_timestamp(system_clock::time_point(microseconds(1722112071147561))) == "2024-07-27T20:27:51.147561Z");
  CHECK(ollama_timestamp(system_clock::time_point(seconds(0))) == "1970-01-01T00:00:00.000000Z");
  CHECK(ollama_parameter_size(260032) == "260K");
  CHECK(ollama_parameter_size(1500) == "1.5K");
  CHECK(ollama_parameter_size(135000000) == "135M");
  CHECK(ollama_parameter_size(8030261248) == "8.0B");
  CHECK(ollama_parameter_size(999) == "999");
}
