// Unit tests of hearth serve's pure parts: request validation, error bodies, API key files, YAML config,
// metrics text, response shapes; and connection.h's admission counts and socket helpers over a loopback connection. Expected values
// are written out by hand from the OpenAI API reference.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>

#include "constrain/matcher.h"
#include "core/error.h"
#include "infer/generator.h"
#include "io/atomic_file.h"
#include "model/causal_lm.h"
#include "model/lora.h"
#include "serve/adapters.h"
#include "serve/api_keys.h"
#include "serve/connection.h"
#include "serve/metrics.h"
#include "constrain/matcher.h"
#include "serve/request.h"
#include "serve/response.h"
#include "serve/scheduler.h"
#include "serve/server_config.h"
#include "serve/sse.h"
#include "tokenizer/tokenizer.h"
#include "random_adapter.h"
#include "serve_process.h"

using namespace hearth;
using namespace hearth::serve;

namespace {

// The ApiError a body raises (status, param), or {0, ""} when it parses.
std::pair<int, std::string> rejection(const std::string& body, Endpoint e = Endpoint::kChat) {
  try {
    request_parse(body, e, 1000, 8);
  } catch (const ApiError& err) {
    return {err.status, err.param};
  }
  return {0, ""};
}

// A TCP connection over loopback: the listening, accepted (server side) and client sockets.
struct Loopback {
  int listener = -1, server = -1, client = -1;
  int server_port = 0, client_port = 0;
  // family AF_INET on 127.0.0.1, or AF_INET6 on :: (dual-stack) reached from 127.0.0.1, so that the server
  // side sees IPv4-mapped addresses. ok() is false when the machine cannot do it (no IPv6).
  explicit Loopback(int family) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_any;
      len = sizeof *a;
    }
    listener = socket(family, SOCK_STREAM, 0);
    if (family == AF_INET6) {
      int no = 0;
      setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &no, sizeof no);
    }
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(listener, 1) != 0) return;
    getsockname(listener, reinterpret_cast<sockaddr*>(&ss), &len);
    server_port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                          : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<uint16_t>(server_port));
    client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return;
    server = accept(listener, nullptr, nullptr);
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    getsockname(client, reinterpret_cast<sockaddr*>(&from), &from_len);
    client_port = ntohs(from.sin_port);
  }
  ~Loopback() {
    for (int fd : {client, server, listener})
      if (fd >= 0) close(fd);
  }
  bool ok() const { return server >= 0; }
};

}  // namespace

TEST_CASE("request_parse: chat fields, defaults and unknown fields", "[serve]") {
  auto r = request_parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":7,
      "temperature":0,"top_p":0.5,"seed":3,"stop":["a","b"],"presence_penalty":1.5,"frequency_penalty":-1,"n":2,
      "stream":true,"stream_options":{"include_usage":true},"logit_bias":{},"user":"x","logprobs":false,
      "response_format":{"type":"text"},"parallel_tool_calls":false})",
                         Endpoint::kChat, 1000, 8);
  CHECK(r.model == "m");
  CHECK(r.messages.size() == 1);
  CHECK(*r.max_tokens == 7);
  CHECK(r.sampling.temperature == 0.0f);
  CHECK(r.sampling.top_p == 0.5f);
  CHECK(r.seed_given);
  CHECK(r.sampling.seed == 3);
  CHECK(r.stop == std::vector<std::string>{"a", "b"});
  CHECK(r.sampling.presence_penalty == 1.5f);
  CHECK(r.sampling.frequency_penalty == -1.0f);
  CHECK(r.n == 2);
  CHECK(r.stream);
  CHECK(r.include_usage);
  // OpenAI defaults: temperature 1, top_p 1, and no top-k / min-p truncation.
  auto d = request_parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", Endpoint::kChat, 1000, 8);
  CHECK(d.sampling.temperature == 1.0f);
  CHECK(d.sampling.top_p == 1.0f);
  CHECK(d.sampling.top_k == 0);
  CHECK(d.sampling.min_p == 0.0f);
  CHECK(!d.max_tokens);
  CHECK(d.n == 1);
  auto m = request_parse(R"({"model":"m","messages":[{"role":"user","content":"x"}],"max_completion_tokens":9})",
                         Endpoint::kChat, 1000, 8);
  CHECK(*m.max_tokens == 9);
  // Content parts are joined into one string for the template; key order is kept.
  auto p = request_parse(
      R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],
      "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"tool_choice":"none"})",
      Endpoint::kChat, 1000, 8);
  CHECK(p.messages[0]["content"] == "ab");
  CHECK(p.tools[0]["function"].begin().key() == "name");
}

TEST_CASE("request_parse: a field that would be silently ignored is a 400 naming it", "[serve]") {
  auto refused = [](const std::string& extra, Endpoint e = Endpoint::kChat) -> std::pair<std::string, std::string> {
    const std::string head = e == Endpoint::kChat ? R"({"model":"m","messages":[{"role":"user","content":"hi"}])"
                                                  : R"({"model":"m","prompt":"hi")";
    try {
      request_parse(head + "," + extra + "}", e, 1000, 8);
    } catch (const ApiError& err) {
      CHECK(err.status == 400);
      return {err.param, err.code};
    }
    return {"", ""};
  };
  using P = std::pair<std::string, std::string>;
  // Asked-for behaviour hearth does not have yet: the app would get a reply silently without it.
  CHECK(refused(R"("logit_bias":{"50256":-100})") == P{"logit_bias", "unsupported_parameter"});
  CHECK(refused(R"("echo":true)") == P{"echo", "unsupported_parameter"});  // chat has no echo
  CHECK(refused(R"("best_of":3)", Endpoint::kCompletions) == P{"best_of", "unsupported_parameter"});
  CHECK(refused(R"("suffix":"end")", Endpoint::kCompletions) == P{"suffix", "unsupported_parameter"});
  // Unknown, and fields of the other endpoint.
  CHECK(refused(R"("something_new":[1])") == P{"something_new", "unknown_parameter"});
  CHECK(refused(R"("prompt":"x")") == P{"prompt", "unknown_parameter"});
  CHECK(refused(R"("messages":[])", Endpoint::kCompletions) == P{"messages", "unknown_parameter"});
  CHECK(refused(R"("top_logprobs":2)", Endpoint::kCompletions) == P{"top_logprobs", "unknown_parameter"});
  // Neutral values ask for nothing and pass.
  CHECK(refused(R"("logprobs":null,"echo":false,"best_of":1,"suffix":"","user":"u")", Endpoint::kCompletions) ==
        P{"", ""});
}

TEST_CASE("request_parse: tools, tool_choice and tool messages, or a 400 naming what is wrong", "[serve]") {
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}])";
  auto parse = [](const std::string& extra, const std::string& messages = R"([{"role":"user","content":"hi"}])") {
    return request_parse(R"({"model":"m","messages":)" + messages + "," + extra + "}", Endpoint::kChat, 1000, 8);
  };
  auto refused = [&](const std::string& extra, const std::string& messages = R"([{"role":"user","content":"hi"}])") {
    try {
      parse(extra, messages);
    } catch (const ApiError& err) {
      CHECK(err.status == 400);
      return err.param;
    }
    return std::string("(accepted)");
  };
  CHECK(parse(tools).tool_choice == "auto");
  CHECK(parse(tools + R"(,"tool_choice":"none")").tool_choice == "none");
  const auto named = parse(tools + R"(,"tool_choice":{"type":"function","function":{"name":"add"}},"parallel_tool_calls":false)");
  CHECK(named.tool_choice == "function");
  CHECK(named.tool_name == "add");
  CHECK_FALSE(named.parallel_tool_calls);
  CHECK(refused(R"("tool_choice":"required")") == "tool_choice");
  CHECK(refused(tools + R"(,"tool_choice":{"type":"function","function":{"name":"sub"}})") == "tool_choice");
  CHECK(refused(tools + R"(,"tool_choice":"sometimes")") == "tool_choice");
  CHECK(refused(R"("tools":[{"type":"retrieval"}])") == "tools[0]");
  CHECK(refused(R"("tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}])") ==
        "tools[1].function.name");
  CHECK(refused(tools + R"(,"response_format":{"type":"json_object"})") == "response_format");
  CHECK(refused(tools + R"(,"logprobs":true)") == "logprobs");
  CHECK(refused(tools + R"(,"parallel_tool_calls":"yes")") == "parallel_tool_calls");
  // A conversation with a call and its result: arguments arrive as a JSON string, the template gets an object.
  const std::string history = R"([{"role":"user","content":"1+2?"},{"role":"assistant","content":null,
    "tool_calls":[{"id":"call_1","type":"function","function":{"name":"add","arguments":"{\"a\":1,\"b\":2}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"3"}])";
  const auto r = parse(tools, history);
  CHECK(r.messages[1]["tool_calls"][0]["function"]["arguments"] == nlohmann::ordered_json({{"a", 1}, {"b", 2}}));
  CHECK(refused(tools, R"([{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"add",
    "arguments":"{not json"}}]}])") == "messages[0].tool_calls[0].function.arguments");
  CHECK(refused(tools, R"([{"role":"tool","content":"3"}])") == "messages[0].tool_call_id");
}

TEST_CASE("request_parse: response_format compiles to a grammar, or is a 400 naming what is wrong", "[serve]") {
  auto parse = [](const std::string& format) {
    return request_parse(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":)" + format + "}",
                         Endpoint::kChat, 1000, 8);
  };
  auto refused = [&](const std::string& format) -> std::string {
    try {
      parse(format);
    } catch (const ApiError& err) {
      CHECK(err.status == 400);
      return err.param + " | " + err.what();
    }
    return "(accepted)";
  };
  CHECK(parse(R"({"type":"text"})").grammar == nullptr);
  CHECK(parse(R"(null)").grammar == nullptr);
  auto accepts = [](const hearth::constrain::Grammar& g, const std::string& text) {
    hearth::constrain::Matcher m(g);
    auto st = m.start();
    return m.advance(st, text) && hearth::constrain::Matcher::accepting(st);
  };
  const auto obj = parse(R"({"type":"json_object"})").grammar;
  REQUIRE(obj);
  CHECK(accepts(*obj, R"({"a":[1]})"));
  CHECK_FALSE(accepts(*obj, "[1]"));
  const auto schema = parse(R"({"type":"json_schema","json_schema":{"name":"n","strict":true,
    "schema":{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"],"additionalProperties":false}}})")
                          .grammar;
  REQUIRE(schema);
  CHECK(accepts(*schema, R"({"x":3})"));
  CHECK_FALSE(accepts(*schema, R"({"x":"3"})"));
  CHECK_THAT(refused(R"({"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object",
    "properties":{"age":{"type":"integer","minimum":0}}}}})"),
             Catch::StartsWith("response_format.json_schema.schema/properties/age/minimum | ") &&
                 Catch::Contains("keyword 'minimum' is not supported"));
  CHECK_THAT(refused(R"({"type":"json_schema","json_schema":{"schema":{}}})"),
             Catch::StartsWith("response_format.json_schema.name | "));
  CHECK_THAT(refused(R"({"type":"xml"})"), Catch::StartsWith("response_format.type | "));
  CHECK_THAT(refused(R"({"type":"json_object","schema":{}})"), Catch::StartsWith("response_format.schema | "));
  CHECK_THAT(refused(R"("json")"), Catch::StartsWith("response_format | "));
}

TEST_CASE("request_parse: logprobs and top_logprobs with bad values a 400 naming the field", "[serve]") {
  auto parse = [](const std::string& extra, Endpoint e = Endpoint::kChat) {
    const std::string head = e == Endpoint::kChat ? R"({"model":"m","messages":[{"role":"user","content":"hi"}])"
                                                  : R"({"model":"m","prompt":"hi")";
    return request_parse(head + (extra.empty() ? "" : "," + extra) + "}", e, 1000, 8);
  };
  CHECK(parse("").logprobs == -1);
  CHECK(parse(R"("logprobs":false)").logprobs == -1);
  CHECK(parse(R"("logprobs":true)").logprobs == 0);
  CHECK(parse(R"("logprobs":true,"top_logprobs":20)").logprobs == 20);
  CHECK(parse(R"("logprobs":true,"top_logprobs":null)").logprobs == 0);
  CHECK(parse("", Endpoint::kCompletions).logprobs == -1);
  CHECK(parse(R"("logprobs":null)", Endpoint::kCompletions).logprobs == -1);
  CHECK(parse(R"("logprobs":false)", Endpoint::kCompletions).logprobs == -1);
  CHECK(parse(R"("logprobs":0)", Endpoint::kCompletions).logprobs == 0);
  CHECK(parse(R"("logprobs":5)", Endpoint::kCompletions).logprobs == 5);
  auto refused = [&](const std::string& extra, Endpoint e = Endpoint::kChat) -> std::string {
    try {
      parse(extra, e);
    } catch (const ApiError& err) {
      CHECK(err.status == 400);
      CHECK(std::string(err.what()).find(err.param) != std::string::npos);
      return err.param;
    }
    return "";
  };
  CHECK(refused(R"("logprobs":1)") == "logprobs");
  CHECK(refused(R"("logprobs":"yes")") == "logprobs");
  CHECK(refused(R"("logprobs":true,"top_logprobs":21)") == "top_logprobs");
  CHECK(refused(R"("logprobs":true,"top_logprobs":-1)") == "top_logprobs");
  CHECK(refused(R"("logprobs":true,"top_logprobs":1.5)") == "top_logprobs");
  CHECK(refused(R"("top_logprobs":2)") == "top_logprobs");  // only with logprobs true
  CHECK(refused(R"("logprobs":false,"top_logprobs":2)") == "top_logprobs");
  CHECK(refused(R"("logprobs":6)", Endpoint::kCompletions) == "logprobs");
  CHECK(refused(R"("logprobs":-1)", Endpoint::kCompletions) == "logprobs");
  CHECK(refused(R"("logprobs":true)", Endpoint::kCompletions) == "logprobs");
}

TEST_CASE("request_parse: completions echo is a boolean, and alone allows max_tokens 0", "[serve]") {
  auto parse = [](const std::string& extra, Endpoint e = Endpoint::kCompletions) {
    const std::string head = e == Endpoint::kChat ? R"({"model":"m","messages":[{"role":"user","content":"hi"}])"
                                                  : R"({"model":"m","prompt":"hi")";
    return request_parse(head + (extra.empty() ? "" : "," + extra) + "}", e, 1000, 8);
  };
  auto refused = [&](const std::string& extra, Endpoint e = Endpoint::kCompletions) -> std::string {
    try {
      parse(extra, e);
    } catch (const ApiError& err) {
      CHECK(err.status == 400);
      return err.param;
    }
    return "";
  };
  CHECK(!parse("").echo);
  CHECK(!parse(R"("echo":null)").echo);
  CHECK(!parse(R"("echo":false)").echo);
  CHECK(parse(R"("echo":true)").echo);
  CHECK(*parse(R"("echo":true,"max_tokens":0)").max_tokens == 0);
  CHECK(*parse(R"("max_tokens":0,"echo":true,"logprobs":2)").max_tokens == 0);  // key order does not matter
  CHECK(refused(R"("echo":"yes")") == "echo");
  CHECK(refused(R"("echo":1)") == "echo");
  CHECK(refused(R"("max_tokens":0)") == "max_tokens");
  CHECK(refused(R"("echo":false,"max_tokens":0)") == "max_tokens");
  CHECK(refused(R"("echo":true,"max_tokens":-1)") == "max_tokens");
  CHECK(refused(R"("echo":true,"max_tokens":0)", Endpoint::kChat) == "echo");
}

TEST_CASE("response: logprobs in the OpenAI shapes of each endpoint", "[serve]") {
  infer::TokenLogprob a;
  a.chosen = {7, -0.5f, " a", {}};
  a.top = {{7, -0.5f, " a", {}}, {9, -1.5f, "\xc3\xa9", {}}};
  a.text_offset = 0;
  infer::TokenLogprob b;
  b.chosen = {8, -2.0f, "b", {}};
  b.top = {{3, -0.25f, "x", {}}, {8, -2.0f, "b", {}}};
  b.text_offset = 2;
  ResponseMeta chat = response_meta(Endpoint::kChat, "m");
  chat.logprobs = 2;
  auto c = logprobs_json(chat, {a, b});
  CHECK(c["refusal"].is_null());
  REQUIRE(c["content"].size() == 2);
  CHECK(c["content"][0]["token"] == " a");
  CHECK(c["content"][0]["logprob"] == -0.5);
  CHECK(c["content"][0]["bytes"] == nlohmann::json({32, 97}));
  CHECK(c["content"][0]["top_logprobs"][1] == nlohmann::json({{"token", "\xc3\xa9"}, {"logprob", -1.5}, {"bytes", {0xc3, 0xa9}}}));
  CHECK(c["content"][1]["top_logprobs"][0]["token"] == "x");
  auto whole = response_full(chat, {{" ab", "stop", {a, b}}}, {1, 2});
  CHECK(whole["choices"][0]["logprobs"] == c);
  CHECK(chunk_text(chat, 0, " ab", {a, b})["choices"][0]["logprobs"] == c);
  CHECK(chunk_finish(chat, 0, "stop")["choices"][0]["logprobs"].is_null());
  chat.logprobs = -1;  // not asked for
  CHECK(response_full(chat, {{" ab", "stop", {}}}, {1, 2})["choices"][0]["logprobs"].is_null());

  ResponseMeta cmpl = response_meta(Endpoint::kCompletions, "m");
  cmpl.logprobs = 2;
  auto l = logprobs_json(cmpl, {a, b});
  CHECK(l["tokens"] == nlohmann::json({" a", "b"}));
  CHECK(l["token_logprobs"] == nlohmann::json({-0.5, -2.0}));
  CHECK(l["top_logprobs"][0] == nlohmann::json({{" a", -0.5}, {"\xc3\xa9", -1.5}}));
  CHECK(l["top_logprobs"][1] == nlohmann::json({{"x", -0.25}, {"b", -2.0}}));
  CHECK(l["text_offset"] == nlohmann::json({0, 2}));
  CHECK(chunk_text(cmpl, 0, " ab", {a, b})["choices"][0]["logprobs"] == l);
  CHECK(response_full(cmpl, {{" ab", "stop", {a, b}}}, {1, 2})["choices"][0]["logprobs"] == l);
}

TEST_CASE("request_parse: completions prompt forms", "[serve]") {
  auto a = request_parse(R"({"model":"m","prompt":"hello"})", Endpoint::kCompletions, 1000, 8);
  CHECK(a.prompts == std::vector<std::string>{"hello"});
  auto b = request_parse(R"({"model":"m","prompt":["x","y"]})", Endpoint::kCompletions, 1000, 8);
  CHECK(b.prompts.size() == 2);
  auto c = request_parse(R"({"model":"m","prompt":[1,2,3]})", Endpoint::kCompletions, 1000, 8);
  CHECK(c.prompt_ids == std::vector<std::vector<int32_t>>{{1, 2, 3}});
}

TEST_CASE("request_parse: malformed JSON, wrong types and invalid values are 400 naming the field", "[serve]") {
  const std::string msg = R"("messages":[{"role":"user","content":"hi"}])";
  CHECK(rejection("{not json") == std::pair<int, std::string>{400, ""});
  CHECK(rejection("[1,2]") == std::pair<int, std::string>{400, ""});
  // A number beyond double's range is not valid JSON to parse: 400, not an internal error (#16 item 8).
  CHECK(rejection(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":1e400})") ==
        std::pair<int, std::string>{400, ""});
  CHECK(rejection("{" + msg + "}").second == "model");
  CHECK(rejection(R"({"model":3,)" + msg + "}").second == "model");
  CHECK(rejection(R"({"model":"m"})").second == "messages");
  CHECK(rejection(R"({"model":"m","messages":[]})").second == "messages");
  CHECK(rejection(R"({"model":"m","messages":[{"role":"wizard","content":"x"}]})").second == "messages[0].role");
  CHECK(rejection(R"({"model":"m","messages":[{"role":"user"}]})").second == "messages[0].content");
  CHECK(rejection(R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})").second ==
        "messages[0].content[0]");
  // A body nested deeper than io::kJsonMaxDepth: 400. 400,000 levels (800 KB, under the 1 MiB default body limit)
  // overflowed the stack copying "tools" and took the server down.
  const std::string deep = std::string(400000, '[') + std::string(400000, ']');
  CHECK(rejection(R"({"model":"m",)" + msg + R"(,"tools":[)" + deep + "]}") == std::pair<int, std::string>{400, ""});
  CHECK(rejection(R"({"model":"m","prompt":"x","extra":)" + deep + "}", Endpoint::kCompletions) ==
        std::pair<int, std::string>{400, ""});
  const std::string fine = std::string(200, '[') + std::string(200, ']');
  CHECK(rejection(R"({"model":"m",)" + msg + R"(,"tool_choice":"none","tools":[{"type":"function","function":)" +
                  R"({"name":"f","parameters":{"x":)" + fine + "}}}]}") == std::pair<int, std::string>{0, ""});
  // A part whose "type" is not a string: nlohmann's type_error escaped (a 500; found by fuzz_request).
  CHECK(rejection(R"({"model":"m","messages":[{"role":"user","content":[{"type":{"name":"b"},"text":"x"}]}]})") ==
        std::pair<int, std::string>{400, "messages[0].content[0]"});
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, std::string>>{{"temperature", "\"hot\""},
                                                        {"temperature", "2.5"},
                                                        {"temperature", "-0.1"},
                                                        {"top_p", "0"},
                                                        {"top_p", "1.5"},
                                                        {"max_tokens", "0"},
                                                        {"max_tokens", "1001"},
                                                        {"max_tokens", "2.5"},
                                                        {"max_completion_tokens", "-3"},
                                                        {"n", "0"},
                                                        {"n", "9"},
                                                        {"seed", "\"x\""},
                                                        {"stop", "[1]"},
                                                        {"stop", R"(["a","b","c","d","e"])"},
                                                        {"presence_penalty", "3"},
                                                        {"frequency_penalty", "-2.5"},
                                                        {"stream", "\"yes\""}}) {
    INFO(field << " = " << value);
    CHECK(rejection(R"({"model":"m",)" + msg + ",\"" + field + "\":" + value + "}") ==
          std::pair<int, std::string>{400, field});
  }
  CHECK(rejection(R"({"model":"m",)" + msg + R"(,"stream_options":{"include_usage":true}})").second ==
        "stream_options");
  CHECK(rejection(R"({"model":"m"})", Endpoint::kCompletions).second == "prompt");
  CHECK(rejection(R"({"model":"m","prompt":{"a":1}})", Endpoint::kCompletions).second == "prompt");
  CHECK(rejection(R"({"model":"m","prompt":[-1]})", Endpoint::kCompletions).second == "prompt");
}

TEST_CASE("api_error_body has the OpenAI shape", "[serve]") {
  auto j = api_error_body(ApiError(400, "bad", "invalid_request_error", "temperature"));
  CHECK(j == nlohmann::json::parse(
                 R"({"error":{"message":"bad","type":"invalid_request_error","param":"temperature","code":null}})"));
  auto k = api_error_body(ApiError(429, "busy", "rate_limit_error", "", "queue_full"));
  CHECK(k["error"]["param"].is_null());
  CHECK(k["error"]["code"] == "queue_full");
}

TEST_CASE("ApiKeys: keys, scopes, comments and errors", "[serve]") {
  auto keys = ApiKeys::parse("# family keys\nsk-laptop-123\n\n  sk-tablet-456   kids,homework  \n", "keys.txt");
  CHECK(keys.size() == 2);
  auto a = keys.find("sk-laptop-123");
  REQUIRE(a);
  CHECK(a->all);
  CHECK(a->allows("anything"));
  auto b = keys.find("sk-tablet-456");
  REQUIRE(b);
  CHECK(!b->all);
  CHECK(b->allows("kids"));
  CHECK(b->allows("homework"));
  CHECK(!b->allows("stories260K"));
  CHECK(!keys.find("sk-laptop-12"));
  CHECK(!keys.find("sk-laptop-1234"));
  CHECK(!keys.find(""));
  CHECK_THROWS_AS(ApiKeys::parse("short\n", "k"), ConfigError);
  CHECK_THROWS_AS(ApiKeys::parse("sk-aaaaaaaa\nsk-aaaaaaaa\n", "k"), ConfigError);
  CHECK_THROWS_AS(ApiKeys::parse("sk-aaaaaaaa a b\n", "k"), ConfigError);
  CHECK_THROWS_AS(ApiKeys::parse("# nothing\n", "k"), ConfigError);
  CHECK(bearer_token("Bearer sk-x") == "sk-x");
  CHECK(bearer_token("Basic abc").empty());
  CHECK(bearer_token("").empty());
}

TEST_CASE("server config: YAML keys, flags, adapter specs and the loopback rule", "[serve]") {
  auto path = test::serve_scratch() / "serve.yaml";
  io::atomic_write(path,
                   "model: /m\nport: 9000\nmax_batch: 4\nwatch_interval_s: 0.5\ninsecure: false\nprefix_cache: false\n"
                   "adapters:\n  kids: /a/kids\n  work: /a/work\n");
  ServerConfig c;
  server_config_load_yaml(path, c);
  CHECK(c.model == "/m");
  CHECK(c.port == 9000);
  CHECK(c.max_batch == 4);
  CHECK(c.watch_interval_s == 0.5);
  CHECK(c.adapters.at("work") == "/a/work");
  CHECK(c.host == "127.0.0.1");  // default kept
  CHECK(!c.prefix_cache);
  CHECK(ServerConfig().prefix_cache);  // on by default
  io::atomic_write(path, "model: /m\nprot: 9000\n");
  CHECK_THROWS_AS(server_config_load_yaml(path, c), ConfigError);
  io::atomic_write(path, "model: /m\nport: lots\n");
  CHECK_THROWS_AS(server_config_load_yaml(path, c), ConfigError);
  CHECK_THROWS_AS(server_config_load_yaml(test::serve_scratch() / "missing.yaml", c), IoError);

  CHECK(adapter_spec_parse("kids=/x/y") == std::pair<std::string, std::string>{"kids", "/x/y"});
  for (const char* bad : {"kids", "=/x", "kids=", "bad name=/x", "a/b=/x"})
    CHECK_THROWS_AS(adapter_spec_parse(bad), ConfigError);

  ServerConfig v;
  v.model = "/m";
  CHECK_NOTHROW(server_config_validate(v));
  v.host = "0.0.0.0";
  CHECK_THROWS_AS(server_config_validate(v), ConfigError);
  v.insecure = true;
  CHECK_NOTHROW(server_config_validate(v));
  v.insecure = false;
  v.api_keys = "keys.txt";
  CHECK_NOTHROW(server_config_validate(v));
  CHECK(host_is_loopback("127.0.0.1"));
  CHECK(host_is_loopback("::1"));
  CHECK(!host_is_loopback("192.168.1.2"));
  CHECK(host_is_loopback("127.3.2.1"));
  CHECK(!host_is_loopback("127.0.0.1.evil.example"));  // a name, not an address
  ServerConfig z;
  z.model = "/m";
  z.max_batch = 0;
  CHECK_THROWS_AS(server_config_validate(z), ConfigError);
  // --step-latency-ms: a time > 0, from the YAML key step_latency_ms too
  io::atomic_write(path, "model: /m\nstep_latency_ms: 80\n");
  ServerConfig l;
  server_config_load_yaml(path, l);
  CHECK(l.step_latency_ms == 80);
  CHECK_NOTHROW(server_config_validate(l));
  for (int bad : {0, -5}) {
    l.step_latency_ms = bad;
    CHECK_THROWS_WITH(server_config_validate(l), Catch::Contains("--step-latency-ms") && Catch::Contains("> 0"));
  }
}

TEST_CASE("metrics: Prometheus text with counters, gauges and cumulative histograms", "[serve]") {
  Metrics m;
  m.request_done("/v1/completions", 200, 0.2);
  m.request_done("/v1/completions", 200, 3.0);
  m.request_done("/v1/completions", 400, 0.01);
  m.tokens(5, 20);
  m.rejected("queue_full");
  m.batch_step(3, 0);
  EngineGauges g;
  g.queue_depth = 2;
  g.kv_used_tokens = 50;
  g.kv_capacity_tokens = 200;
  g.prefix_cache.hit_tokens = 96;
  g.prefix_cache.blocks = 7;
  m.gauges(g);
  auto text = m.render();
  CHECK(text.find("hearth_requests_total{route=\"/v1/completions\",code=\"200\"} 2\n") != std::string::npos);
  CHECK(text.find("hearth_requests_total{route=\"/v1/completions\",code=\"400\"} 1\n") != std::string::npos);
  CHECK(text.find("hearth_completion_tokens_total 20\n") != std::string::npos);
  CHECK(text.find("hearth_requests_rejected_total{reason=\"queue_full\"} 1\n") != std::string::npos);
  CHECK(text.find("hearth_queue_depth 2\n") != std::string::npos);
  CHECK(text.find("hearth_kv_cache_usage_ratio 0.25\n") != std::string::npos);
  CHECK(text.find("# TYPE hearth_prefix_cache_hit_tokens_total counter\nhearth_prefix_cache_hit_tokens_total 96\n") !=
        std::string::npos);
  CHECK(text.find("hearth_prefix_cache_miss_tokens_total 0\n") != std::string::npos);
  CHECK(text.find("hearth_prefix_cache_evictions_total 0\n") != std::string::npos);
  CHECK(text.find("hearth_prefix_cache_blocks 7\n") != std::string::npos);
  // buckets are cumulative: 0.01 <= 0.05; 0.2 <= 0.25; 3.0 <= 5
  CHECK(text.find("hearth_request_duration_seconds_bucket{le=\"0.05\"} 1\n") != std::string::npos);
  CHECK(text.find("hearth_request_duration_seconds_bucket{le=\"0.25\"} 2\n") != std::string::npos);
  CHECK(text.find("hearth_request_duration_seconds_bucket{le=\"5\"} 3\n") != std::string::npos);
  CHECK(text.find("hearth_request_duration_seconds_count 3\n") != std::string::npos);
  CHECK(text.find("hearth_batch_size_bucket{le=\"4\"} 1\n") != std::string::npos);
}

TEST_CASE("responses and SSE framing follow the OpenAI shapes", "[serve]") {
  auto meta = response_meta(Endpoint::kChat, "kids");
  CHECK(meta.id.rfind("chatcmpl-", 0) == 0);
  auto full = response_full(meta, {{"hello", "stop", {}}}, {3, 1});
  CHECK(full["object"] == "chat.completion");
  CHECK(full["choices"][0]["message"]["content"] == "hello");
  CHECK(full["choices"][0]["finish_reason"] == "stop");
  CHECK(full["usage"]["total_tokens"] == 4);
  auto chunk = chunk_text(meta, 0, "he");
  CHECK(chunk["object"] == "chat.completion.chunk");
  CHECK(chunk["choices"][0]["delta"]["content"] == "he");
  CHECK(chunk["choices"][0]["finish_reason"].is_null());
  auto tmeta = response_meta(Endpoint::kCompletions, "base");
  CHECK(chunk_text(tmeta, 1, "x")["choices"][0]["text"] == "x");
  CHECK(chunk_usage(tmeta, {2, 3})["choices"].empty());
  CHECK(sse_event({{"a", 1}}) == "data: {\"a\":1}\n\n");
  CHECK(std::string(kSseDone) == "data: [DONE]\n\n");
}

TEST_CASE("peer_address names the client, and peer_closed sees it leave", "[serve]") {
  Loopback v4(AF_INET);
  REQUIRE(v4.ok());
  CHECK(peer_address(v4.server) == "127.0.0.1");
  CHECK(peer_address(-1).empty());
  // A dual-stack listener sees the IPv4 client through an IPv4-mapped IPv6 address: the same client, the same key.
  Loopback mapped(AF_INET6);
  if (mapped.ok()) CHECK(peer_address(mapped.server) == "127.0.0.1");
  else WARN("no IPv6 here: the IPv4-mapped case is not checked");
  CHECK(connection_fd_current() == -1);  // not on a connection thread

  CHECK_FALSE(peer_closed(v4.server));
  REQUIRE(send(v4.client, "GET", 3, 0) == 3);  // unread bytes (a pipelined request) are not a close
  CHECK_FALSE(peer_closed(v4.server));
  close(v4.client);
  v4.client = -1;
  CHECK(peer_closed(v4.server));  // loopback delivers the FIN at once; the unread bytes do not hide it
  CHECK_FALSE(peer_closed(-1));
}

TEST_CASE("ConnectionGate counts open connections in all and per client address", "[serve]") {
  using V = ConnectionGate::Verdict;
  ConnectionGate gate(3, 2);
  CHECK(gate.admit("10.0.0.1") == V::kAdmitted);
  CHECK(gate.admit("10.0.0.1") == V::kAdmitted);
  CHECK(gate.admit("10.0.0.1") == V::kPerClient);  // a third from one address
  CHECK(gate.admit("10.0.0.2") == V::kAdmitted);
  CHECK(gate.open() == 3);
  CHECK(gate.admit("10.0.0.3") == V::kTotal);  // a fourth in all
  gate.release("10.0.0.1");
  CHECK(gate.open() == 2);
  CHECK(gate.admit("10.0.0.3") == V::kAdmitted);  // a freed slot is anyone's
  CHECK(gate.admit("10.0.0.1") == V::kTotal);
  gate.release("10.0.0.9");  // never admitted: changes nothing
  CHECK(gate.open() == 3);
}

TEST_CASE("adapter sources: a PEFT folder, a `latest` pointer, or a finetune-lora run directory", "[serve]") {
  namespace fs = std::filesystem;
  const fs::path run = test::serve_scratch() / "resolve_run";
  fs::remove_all(run);
  fs::create_directories(run / "adapters" / "v0001");
  io::atomic_write(run / "adapters" / "v0001" / "adapter_config.json", "{}");
  fs::create_directory_symlink("v0001", run / "adapters" / "latest");
  const fs::path v1 = fs::canonical(run / "adapters" / "v0001");
  CHECK(AdapterRegistry::resolve(run / "adapters" / "v0001") == run / "adapters" / "v0001");
  CHECK(AdapterRegistry::resolve(run / "adapters") == v1);
  CHECK(AdapterRegistry::resolve(run) == v1);  // docs/serve.md's `--adapter kids=runs/kids-lora` (it failed)
  CHECK_THROWS_AS(AdapterRegistry::resolve(run / "adapters" / "missing"), IoError);
}

TEST_CASE("keyless loopback servers answer only their own host names and pages", "[serve]") {
  // DNS rebinding (a page at evil.example whose name now resolves to 127.0.0.1) sends Host: evil.example; a
  // cross-site request sends the page's Origin. Both were answered (#16 item 5).
  CHECK(keyless_request_refusal("127.0.0.1:8080", "", "127.0.0.1", 8080).empty());
  CHECK(keyless_request_refusal("localhost:8080", "", "127.0.0.1", 8080).empty());
  CHECK(keyless_request_refusal("LOCALHOST", "", "127.0.0.1", 8080).empty());
  CHECK(keyless_request_refusal("[::1]:8080", "", "::1", 8080).empty());
  CHECK(keyless_request_refusal("", "", "127.0.0.1", 8080).empty());  // HTTP/1.0: no Host
  CHECK(keyless_request_refusal("127.0.0.1:8080", "http://127.0.0.1:8080", "127.0.0.1", 8080).empty());
  CHECK(keyless_request_refusal("127.0.0.1:8080", "http://localhost:8080", "127.0.0.1", 8080).empty());
  CHECK_THAT(keyless_request_refusal("evil.example:8080", "", "127.0.0.1", 8080), Catch::Contains("evil.example"));
  CHECK_FALSE(keyless_request_refusal("127.0.0.1.evil.example", "", "127.0.0.1", 8080).empty());
  CHECK_FALSE(keyless_request_refusal("127.0.0.1:8080", "http://evil.example", "127.0.0.1", 8080).empty());
  CHECK_FALSE(keyless_request_refusal("127.0.0.1:8080", "http://localhost:3000", "127.0.0.1", 8080).empty());
  CHECK_FALSE(keyless_request_refusal("127.0.0.1:8080", "https://127.0.0.1:8080", "127.0.0.1", 8080).empty());
  CHECK_FALSE(keyless_request_refusal("127.0.0.1:8080", "null", "127.0.0.1", 8080).empty());  // sandboxed frames
}

namespace {

// The real model, except that a step fails for rows running one of two marked adapters, as a bug or an input
// specific to one request would: `prefill_poison` fails every prefill (T > 1), `decode_poison` fails decode steps
// once the row is past position 12 (so that, by then, other requests share its batch). The marked adapters
// otherwise act as the base model.
class PoisonedModel final : public model::CausalLM {
 public:
  PoisonedModel(const model::CausalLM& inner, const model::LoraAdapter* prefill_poison,
                const model::LoraAdapter* decode_poison)
      : CausalLM(inner.config(), model::LoadOptions{inner.device(), inner.dtype()}, "poisoned"),
        inner_(inner),
        prefill_(prefill_poison),
        decode_(decode_poison) {}
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                        model::KvCache* cache, const model::ForwardOptions& options) const override {
    // The poison strikes after the real forward, which appended its keys and values to the cache: the scheduler
    // must rewind every row of the failed batch before retrying them one at a time.
    auto o = options;
    const char* poison = nullptr;
    for (size_t b = 0; b < o.adapters.size(); ++b) {
      if (o.adapters[b] == prefill_ && tokens.size(1) > 1) poison = "poisoned prefill";
      if (o.adapters[b] == decode_ && tokens.size(1) == 1 && positions[static_cast<int64_t>(b)][0].item<int64_t>() > 12)
        poison = "poisoned decode";
      if (o.adapters[b] == prefill_ || o.adapters[b] == decode_) o.adapters[b] = nullptr;
    }
    auto logits = inner_.forward(tokens, positions, valid, cache, o);
    if (poison && tokens.size(0) > 1 && tokens.size(1) > 1) ++batched_prefill_failures;
    if (poison) throw std::runtime_error(poison);
    return logits;
  }
  std::vector<const model::Linear*> linears() const override { return inner_.linears(); }
  size_t weight_bytes() const override { return inner_.weight_bytes(); }
  mutable std::atomic<int> batched_prefill_failures{0};  // poisoned prefills of several rows at once

 private:
  const model::CausalLM& inner_;
  const model::LoraAdapter *prefill_, *decode_;
};

// Waits for a completion; returns (text of choice 0, error).
std::pair<std::string, std::string> completion_wait(Completion& c) {
  std::string text;
  for (int i = 0; i < 600 && !c.done(); ++i)
    for (const auto& u : c.take(std::chrono::milliseconds(100))) text += u.text;
  return {text, c.error()};
}

SequenceSpec greedy_spec(const tokenizer::Tokenizer& tok, const std::string& prompt, int max_tokens,
                         std::shared_ptr<const model::LoraAdapter> adapter = nullptr) {
  SequenceSpec spec;
  spec.request.prompt = tok.encode(prompt);
  spec.request.max_tokens = max_tokens;
  spec.request.sampling.temperature = 0;
  spec.adapter = std::move(adapter);
  return spec;
}

}  // namespace

TEST_CASE("Scheduler: a request that fails in the engine fails alone, and its batch neighbours finish unchanged",
          "[serve]") {
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  auto real = model::causal_lm_load(test::stories_dir());
  model::LoraConfig lc;
  lc.r = 2;
  auto prefill_poison = std::make_shared<const model::LoraAdapter>(model::LoraAdapter::create(real->config(), lc, 1));
  auto decode_poison = std::make_shared<const model::LoraAdapter>(model::LoraAdapter::create(real->config(), lc, 2));
  PoisonedModel poisoned(*real, prefill_poison.get(), decode_poison.get());
  SchedulerOptions so;
  so.max_batch = 4;
  so.ctx = 128;
  Scheduler sched(poisoned, tok, so, nullptr);

  auto run = [&](std::vector<std::pair<SequenceSpec, std::shared_ptr<Completion>>> jobs) {
    for (auto& [spec, c] : jobs) REQUIRE(sched.submit(c, {std::move(spec)}));
    std::vector<std::pair<std::string, std::string>> out;
    for (auto& [spec, c] : jobs) out.push_back(completion_wait(*c));
    return out;
  };
  // References: each healthy request alone.
  auto alone_a = run({{greedy_spec(tok, "Once upon a time", 40), std::make_shared<Completion>(1)}});
  auto alone_b = run({{greedy_spec(tok, "The cat sat on", 40), std::make_shared<Completion>(1)}});
  REQUIRE(alone_a[0].second.empty());
  REQUIRE(alone_b[0].second.empty());
  REQUIRE(!alone_a[0].first.empty());

  // The decode-poisoned request runs in one batch with both; the prefill-poisoned one arrives among them.
  auto mixed = run({{greedy_spec(tok, "Once upon a time", 40), std::make_shared<Completion>(1)},
                    {greedy_spec(tok, "Lily and Ben", 40, decode_poison), std::make_shared<Completion>(1)},
                    {greedy_spec(tok, "The cat sat on", 40), std::make_shared<Completion>(1)},
                    {greedy_spec(tok, "One day", 40, prefill_poison), std::make_shared<Completion>(1)}});
  CHECK(mixed[0] == alone_a[0]);
  CHECK(mixed[2] == alone_b[0]);
  CHECK(mixed[1].second.find("internal error in the generation engine") != std::string::npos);
  CHECK(mixed[3].second.find("internal error in the generation engine") != std::string::npos);
  CHECK(mixed[1].second.find("poisoned") == std::string::npos);  // the cause stays in the log
  // The four arrived together: the poisoned prompt failed a batched prefill, whose rows were rewound and retried.
  CHECK(poisoned.batched_prefill_failures > 0);
  // Every row is free again, and the engine still serves.
  for (int i = 0; i < 100 && sched.gauges().active > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(sched.gauges().active == 0);
  CHECK(sched.gauges().kv_used_tokens == 0);
  CHECK(run({{greedy_spec(tok, "Once upon a time", 40), std::make_shared<Completion>(1)}})[0] == alone_a[0]);
  sched.stop();
}

namespace {

// The real model, recording each forward's shape and adapters; forwards wait while the gate is closed, so that a test
// can queue requests that the scheduler then finds waiting together.
class GatedModel final : public model::CausalLM {
 public:
  struct Call {
    int64_t rows = 0, tokens = 0;
    std::vector<const model::LoraAdapter*> adapters;
  };
  explicit GatedModel(const model::CausalLM& inner)
      : CausalLM(inner.config(), model::LoadOptions{inner.device(), inner.dtype()}, "gated"), inner_(inner) {}
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& positions, const torch::Tensor& valid,
                        model::KvCache* cache, const model::ForwardOptions& options) const override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++waiting_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
      --waiting_;
      calls_.push_back({tokens.size(0), tokens.size(1), options.adapters});
    }
    return inner_.forward(tokens, positions, valid, cache, options);
  }
  std::vector<const model::Linear*> linears() const override { return inner_.linears(); }
  size_t weight_bytes() const override { return inner_.weight_bytes(); }

  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until a forward is held at the (closed) gate; false after 10 s.
  bool held() const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return waiting_ > 0; });
  }
  std::vector<Call> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  const model::CausalLM& inner_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool open_ = true;
  mutable int waiting_ = 0;
  mutable std::vector<Call> calls_;
};

// Closes the gate and submits a one-token request whose prefill is then held there: requests submitted next wait
// in the queue, to be found together by the scheduler's next step once the gate opens. Returns that request.
std::shared_ptr<Completion> hold_first_request(Scheduler& sched, GatedModel& gated, const tokenizer::Tokenizer& tok) {
  gated.close();
  auto first = std::make_shared<Completion>(1);
  REQUIRE(sched.submit(first, {greedy_spec(tok, "Hello", 1)}));
  REQUIRE(gated.held());
  return first;
}

}  // namespace

TEST_CASE("Scheduler: prompts that arrive together are prefilled in one forward, mixed adapters and a prompt longer "
          "than the chunk included, each as `generate` alone",
          "[serve]") {
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  auto real = model::causal_lm_load(test::stories_dir());
  const auto& config = real->config();
  auto kids = std::make_shared<const model::LoraAdapter>(
      model::LoraAdapter::load(test::random_adapter_make(test::serve_scratch() / "unit-adapters" / "kids", 31), config));
  auto work = std::make_shared<const model::LoraAdapter>(
      model::LoraAdapter::load(test::random_adapter_make(test::serve_scratch() / "unit-adapters" / "work", 32), config));
  struct Case {
    std::string prompt;
    std::shared_ptr<const model::LoraAdapter> adapter;
  };
  const std::vector<Case> cases = {
      {"Once upon a time", nullptr},
      {"The cat sat on", kids},
      {"Lily and Ben went to the park. They saw a big dog and a little bird in a tree. The dog barked and", work},
      {"One day", nullptr},
  };
  const int kTokens = 24;
  // The independent reference: infer::generate, each request alone (its whole prompt in one forward, one row).
  std::vector<std::string> reference;
  for (const auto& c : cases) {
    c10::InferenceMode guard;
    auto spec = greedy_spec(tok, c.prompt, kTokens);
    spec.request.adapter = c.adapter.get();
    reference.push_back(infer::generate(*real, tok, {spec.request}, {}, nullptr, 128)[0].text);
  }
  REQUIRE(reference[1] != infer::generate(*real, tok, {greedy_spec(tok, cases[1].prompt, kTokens).request})[0].text);
  REQUIRE(tok.encode(cases[2].prompt).size() > 32);  // longer than the chunk

  GatedModel gated(*real);
  SchedulerOptions so;
  so.max_batch = 8;
  so.ctx = 128;
  so.prefill_chunk = 32;
  Scheduler sched(gated, tok, so, nullptr);
  // A first request's prefill is held at the gate while the others are queued: the next step finds them together,
  // with nothing decoding (the first one wants one token), so the step's budget is the whole chunk. The plan then
  // takes all four: 5, 7, 8 of the long one's 38 and 3 tokens, 4 rows × 8 (finishing three prompts; with three rows
  // × 10 it would finish two).
  auto first = hold_first_request(sched, gated, tok);
  std::vector<std::shared_ptr<Completion>> completions;
  for (const auto& c : cases) {
    completions.push_back(std::make_shared<Completion>(1));
    REQUIRE(sched.submit(completions.back(), {greedy_spec(tok, c.prompt, kTokens, c.adapter)}));
  }
  const auto before = gated.calls().size();
  gated.open();
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO(cases[i].prompt);
    auto [text, error] = completion_wait(*completions[i]);
    CHECK(error.empty());
    CHECK(text == reference[i]);
  }
  CHECK(completion_wait(*first).second.empty());
  // One prefill forward (more than one token a row) held the four: the base model's rows and both adapters' side by
  // side, the long prompt's among them.
  bool mixed = false;
  const auto calls = gated.calls();
  for (size_t i = before; i < calls.size(); ++i) {
    const auto& a = calls[i].adapters;
    auto has = [&](const model::LoraAdapter* x) { return std::find(a.begin(), a.end(), x) != a.end(); };
    if (calls[i].tokens > 1 && calls[i].rows == 4 && has(nullptr) && has(kids.get()) && has(work.get())) mixed = true;
  }
  CHECK(mixed);
  sched.stop();
}

TEST_CASE("Scheduler: a --kv-memory-mb that holds no cache row is a ConfigError naming it", "[serve]") {
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  auto m = model::causal_lm_load(test::stories_dir());
  SchedulerOptions so;
  so.ctx = 512;
  // stories260K: 5 layers × 4 key/value heads × head dim 8, keys and values in float32 = 1,280 bytes a token.
  so.kv_memory_bytes = 512 * 1280 - 1;
  CHECK_THROWS_WITH(Scheduler(*m, tok, so, nullptr), Catch::Contains("--kv-memory-mb") && Catch::Contains("--ctx 512"));
  so.kv_memory_bytes = 3 * 512 * 1281;  // three rows fit
  so.max_batch = 8;
  Scheduler three(*m, tok, so, nullptr);
  CHECK(three.rows() == 3);
  three.stop();
}

TEST_CASE("Scheduler: the choices of one request prefill their shared blocks once, then the rest together",
          "[serve]") {
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  auto real = model::causal_lm_load(test::stories_dir());
  const std::string prompt =
      "Lily and Ben went to the park. They saw a big dog and a little bird in a tree. The dog barked and the bird";
  const auto ids = tok.encode(prompt);
  REQUIRE(ids.size() > 32);  // two whole 16-token blocks to share, and a rest
  GatedModel gated(*real);
  SchedulerOptions so;
  so.max_batch = 8;
  so.ctx = 128;
  Scheduler sched(gated, tok, so, nullptr);
  // A first request's prefill is held at the gate while a request for four choices of one prompt is queued.
  auto first = hold_first_request(sched, gated, tok);
  auto four = std::make_shared<Completion>(4);
  REQUIRE(sched.submit(four, std::vector<SequenceSpec>(4, greedy_spec(tok, prompt, 4))));
  const auto before = gated.calls().size();
  gated.open();
  CHECK(completion_wait(*four).second.empty());
  // Choice 0 computes the whole prompt alone (the others would compute its blocks again beside it); once its blocks
  // are cached, the three others copy them and prefill their rest in ONE forward of three rows (before admission
  // restored each choice's blocks ahead of choosing the next, they went one a step).
  std::vector<int64_t> prefill_rows;
  const auto calls = gated.calls();
  for (size_t i = before; i < calls.size(); ++i)
    if (calls[i].tokens > 1) prefill_rows.push_back(calls[i].rows);
  CHECK(prefill_rows == std::vector<int64_t>{1, 1, 3});  // "Hello" (held at the gate: counted), choice 0, the rest
  sched.stop();
}

TEST_CASE("Completion: each token event's text is its own piece, in order, however late the reader takes", "[serve]") {
  // A reader that falls behind (a loaded machine) still gets one update per token event, as llama.cpp's server and
  // Ollama stream, not the text run together; events that held their text back (no text, no logprobs) are no piece.
  Completion c(2);
  c.append(0, "Once", 1);
  c.append(0, "", 1);  // held back (a stop string's possible start, an incomplete character)
  c.append(1, "A", 1);
  c.append(0, " upon", 2);
  c.append(1, "", 1, {infer::TokenLogprob{}});  // logprobs alone are a piece
  c.finish(0, "stop");
  auto u = c.take(std::chrono::milliseconds(0));
  REQUIRE(u.size() == 4);
  CHECK(u[0].index == 0);
  CHECK(u[0].text == "Once");
  CHECK_FALSE(u[0].finished);
  CHECK(u[1].index == 0);
  CHECK(u[1].text == " upon");
  CHECK(u[1].finished);  // the choice's last piece carries its end
  CHECK(u[1].finish_reason == "stop");
  CHECK(u[2].index == 1);
  CHECK(u[2].text == "A");
  CHECK(u[3].index == 1);
  CHECK(u[3].logprobs.size() == 1);
  CHECK_FALSE(u[3].finished);
  CHECK(c.completion_tokens() == 6);
  CHECK_FALSE(c.done());
  c.finish(1, "length");  // an end with nothing left to send: one empty update carries it
  u = c.take(std::chrono::milliseconds(0));
  REQUIRE(u.size() == 1);
  CHECK(u[0].index == 1);
  CHECK(u[0].text.empty());
  CHECK(u[0].finished);
  CHECK(u[0].finish_reason == "length");
  CHECK(c.done());
  CHECK(c.take(std::chrono::milliseconds(0)).empty());
}
