// End to end: `hearth serve`'s Ollama API (/api/...) driven over HTTP on 127.0.0.1 with cpp-httplib's client, as an
// Ollama client would. The references are the server's own OpenAI endpoints — the Ollama routes are a translation
// onto the same engine path, so greedy text, token counts and finish reasons must be the same — and, for embeddings,
// /v1/embeddings (itself tested against an independent computation in test_serve.cpp).
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>

#include "model/causal_lm.h"
#include "model/lora.h"
#include "serve_process.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kModel = "stories260K";
const json kGreedy = {{"temperature", 0}, {"repeat_penalty", 1}, {"num_predict", 24}};  // Ollama's penalty is 1.1

json user(const std::string& text) { return json::array({{{"role", "user"}, {"content", text}}}); }

// The objects of an NDJSON body: every line one JSON object, the body ending with a newline.
std::vector<json> ndjson(const std::string& body) {
  REQUIRE(!body.empty());
  CHECK(body.back() == '\n');
  std::vector<json> out;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    INFO(line);
    REQUIRE(!line.empty());
    auto j = json::parse(line, nullptr, false);
    REQUIRE(j.is_object());
    out.push_back(std::move(j));
  }
  return out;
}

// A streamed reply's text ("message.content" or "response" of each object) and its last object; checks the framing:
// every object but the last has done false, the last done true.
std::pair<std::string, json> stream_text(const std::string& body) {
  auto objects = ndjson(body);
  REQUIRE(objects.size() >= 2);
  std::string text;
  for (size_t i = 0; i < objects.size(); ++i) {
    const auto& o = objects[i];
    INFO(o.dump());
    CHECK(o["done"] == (i + 1 == objects.size()));
    CHECK(o["model"].is_string());
    text += o.contains("message") ? o["message"]["content"].get<std::string>() : o["response"].get<std::string>();
  }
  return {text, objects.back()};
}

httplib::Result post(httplib::Client& c, const std::string& path, const json& body) {
  return c.Post(path.c_str(), body.dump(), "application/json");
}

// A LoRA adapter with random A and B (a fresh one has B = 0 and would change nothing), saved as PEFT.
fs::path adapter_make(const std::string& name, uint64_t seed) {
  auto dir = test::serve_scratch() / "adapters" / name;
  if (fs::exists(dir / "adapter_config.json")) return dir;
  model::LoraConfig lc;
  lc.r = 4;
  lc.targets = {model::LoraTarget::kQ, model::LoraTarget::kV, model::LoraTarget::kO};
  auto adapter = model::LoraAdapter::create(model::config_load(test::stories_dir()), lc, seed);
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& p : adapter.parameters()) p.copy_(torch::randn_like(p) * 0.3);
  adapter.save(dir);
  return dir;
}

// Greedy text and usage from /v1/completions (raw prompts).
json openai_completion(httplib::Client& c, const std::string& model, const std::string& prompt, int max_tokens,
                       const json& extra = json::object()) {
  json req = {{"model", model}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
  req.update(extra);
  auto [status, body] = test::post_json(c, "/v1/completions", req);
  INFO(body.dump());
  REQUIRE(status == 200);
  return body;
}

}  // namespace

TEST_CASE("serve ollama: greedy /api/chat and /api/generate equal the OpenAI endpoints, whole and as NDJSON",
          "[serve][ollama]") {
  test::ServeProcess s({});
  REQUIRE(s.port() > 0);
  auto c = s.client();
  const std::regex time_re(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  for (const std::string prompt : {"Tell me a story.", "The cat sat on"}) {
    INFO(prompt);
    auto [st, oa] = test::post_json(
        c, "/v1/chat/completions",
        {{"model", kModel}, {"messages", user(prompt)}, {"temperature", 0}, {"max_tokens", 24}});
    REQUIRE(st == 200);
    const std::string text = oa["choices"][0]["message"]["content"];
    const json finish = oa["choices"][0]["finish_reason"];
    const json& usage = oa["usage"];

    // /api/chat, whole: the same text, reason and counts
    const json chat = {{"model", kModel}, {"messages", user(prompt)}, {"options", kGreedy}};
    json whole_req = chat;
    whole_req["stream"] = false;
    auto whole = post(c, "/api/chat", whole_req);
    REQUIRE(whole);
    REQUIRE(whole->status == 200);
    CHECK(whole->get_header_value("Content-Type").rfind("application/json", 0) == 0);
    auto w = json::parse(whole->body);
    CHECK(w["model"] == kModel);
    CHECK(std::regex_match(w["created_at"].get<std::string>(), time_re));
    CHECK(w["message"] == json{{"role", "assistant"}, {"content", text}});
    CHECK(w["done"] == true);
    CHECK(w["done_reason"] == finish);
    CHECK(w["prompt_eval_count"] == usage["prompt_tokens"]);
    CHECK(w["eval_count"] == usage["completion_tokens"]);
    CHECK(w["load_duration"] == 0);
    CHECK(w["total_duration"].get<int64_t>() >=
          w["prompt_eval_duration"].get<int64_t>() + w["eval_duration"].get<int64_t>());
    CHECK(w["eval_duration"].get<int64_t>() > 0);

    // /api/chat streams by default: NDJSON, one object per piece, the last done with the statistics
    auto streamed = post(c, "/api/chat", chat);
    REQUIRE(streamed);
    REQUIRE(streamed->status == 200);
    CHECK(streamed->get_header_value("Content-Type") == "application/x-ndjson");
    auto [stream_text_got, last] = stream_text(streamed->body);
    CHECK(stream_text_got == text);
    CHECK(last["message"] == json{{"role", "assistant"}, {"content", ""}});
    CHECK(last["done_reason"] == finish);
    CHECK(last["eval_count"] == usage["completion_tokens"]);
    CHECK(ndjson(streamed->body).size() > 5);

    // /api/generate: the prompt as a user turn through the same chat template
    auto gen = post(c, "/api/generate", {{"model", kModel}, {"prompt", prompt}, {"options", kGreedy}});
    REQUIRE(gen);
    REQUIRE(gen->status == 200);
    auto [gen_text, gen_last] = stream_text(gen->body);
    CHECK(gen_text == text);
    CHECK(gen_last["response"] == "");
    CHECK(gen_last["prompt_eval_count"] == usage["prompt_tokens"]);

    // raw: the prompt as it is, as /v1/completions takes it
    auto ref = openai_completion(c, kModel, prompt, 24);
    auto [rs, raw] = test::post_json(
        c, "/api/generate",
        {{"model", kModel}, {"prompt", prompt}, {"raw", true}, {"stream", false}, {"options", kGreedy}});
    REQUIRE(rs == 200);
    CHECK(raw["response"] == ref["choices"][0]["text"]);
    CHECK(raw["done_reason"] == ref["choices"][0]["finish_reason"]);
    CHECK(raw["prompt_eval_count"] == ref["usage"]["prompt_tokens"]);
    CHECK(raw.count("message") == 0);
  }
  // A system message, with /api/generate's `system`, equals it in /v1/chat/completions' messages.
  const json messages = {{{"role", "system"}, {"content", "You tell stories."}},
                         {{"role", "user"}, {"content", "A dog"}}};
  auto [st, oa] = test::post_json(c, "/v1/chat/completions",
                                  {{"model", kModel}, {"messages", messages}, {"temperature", 0}, {"max_tokens", 24}});
  REQUIRE(st == 200);
  auto [gs, gen] = test::post_json(c, "/api/generate",
                                   {{"model", kModel},
                                    {"prompt", "A dog"},
                                    {"system", "You tell stories."},
                                    {"stream", false},
                                    {"options", kGreedy}});
  REQUIRE(gs == 200);
  CHECK(gen["response"] == oa["choices"][0]["message"]["content"]);
  // Ollama's default repeat_penalty (1.1) is applied when the request does not set it: greedy text then differs.
  const std::string prompt = "Once upon a time";
  auto plain = openai_completion(c, kModel, prompt, 64);
  auto [ds, dflt] = test::post_json(c, "/api/generate",
                                    {{"model", kModel},
                                     {"prompt", prompt},
                                     {"raw", true},
                                     {"stream", false},
                                     {"options", {{"temperature", 0}, {"num_predict", 64}}}});
  REQUIRE(ds == 200);
  CHECK(dflt["response"] != plain["choices"][0]["text"]);
}

TEST_CASE("serve ollama: done_reason length at num_predict or num_ctx, stop at a stop string", "[serve][ollama]") {
  test::ServeProcess s({});
  REQUIRE(s.port() > 0);
  auto c = s.client();
  const std::string prompt = "Once upon a time";
  auto generate = [&](const json& options) {
    json o = kGreedy;
    o.update(options);
    return test::post_json(c, "/api/generate",
                           {{"model", kModel}, {"prompt", prompt}, {"raw", true}, {"stream", false}, {"options", o}});
  };
  auto [s1, five] = generate({{"num_predict", 5}});
  REQUIRE(s1 == 200);
  CHECK(five["done_reason"] == "length");
  CHECK(five["eval_count"] == 5);

  auto ref = openai_completion(c, kModel, prompt, 64, {{"stop", "Lily"}});
  REQUIRE(ref["choices"][0]["finish_reason"] == "stop");
  auto [s2, stopped] = generate({{"num_predict", 64}, {"stop", {"Lily"}}});
  REQUIRE(s2 == 200);
  CHECK(stopped["response"] == ref["choices"][0]["text"]);
  CHECK(stopped["done_reason"] == "stop");
  // streamed, the stop string is cut as well
  auto r = post(c, "/api/generate",
                {{"model", kModel},
                 {"prompt", prompt},
                 {"raw", true},
                 {"options", {{"temperature", 0}, {"repeat_penalty", 1}, {"num_predict", 64}, {"stop", "Lily"}}}});
  REQUIRE(r);
  auto [text, last] = stream_text(r->body);
  CHECK(text == ref["choices"][0]["text"]);
  CHECK(last["done_reason"] == "stop");

  // num_ctx is the request's context: prompt + reply; a prompt that does not fit is refused
  const int prompt_tokens = five["prompt_eval_count"];
  auto [s3, window] = generate({{"num_predict", -1}, {"num_ctx", prompt_tokens + 3}});
  REQUIRE(s3 == 200);
  CHECK(window["eval_count"] == 3);
  CHECK(window["done_reason"] == "length");
  auto [s4, too_long] = generate({{"num_ctx", prompt_tokens}});
  CHECK(s4 == 400);
  CHECK(too_long["error"].get<std::string>().find("context length") != std::string::npos);
  // beyond the server's --ctx it is the server's (as Ollama clamps num_ctx to the model's)
  auto [s5, big] = generate({{"num_ctx", 1 << 20}, {"num_predict", 8}});
  CHECK(s5 == 200);
  CHECK(big["eval_count"] == 8);
}

TEST_CASE("serve ollama: refusals are Ollama error bodies naming the field, and the server keeps serving",
          "[serve][ollama]") {
  test::ServeProcess s({});
  REQUIRE(s.port() > 0);
  auto c = s.client();
  const json chat = {{"model", kModel}, {"messages", user("Hi")}, {"stream", false}};
  auto refused = [&](const std::string& path, const json& extra) {
    json body = chat;
    body.update(extra);
    if (path != "/api/chat") body.erase("messages");
    if (path == "/api/embed") body.erase("stream");
    auto r = post(c, path, body);
    REQUIRE(r);
    auto j = json::parse(r->body);
    INFO(r->body);
    REQUIRE(j.size() == 1);  // {"error": "..."}, Ollama's shape
    REQUIRE(j["error"].is_string());
    return std::make_pair(r->status, j["error"].get<std::string>());
  };
  auto names = [](const std::pair<int, std::string>& r, const std::string& field) {
    INFO(r.second);
    CHECK(r.first == 400);
    CHECK(r.second.find("'" + field + "'") != std::string::npos);
  };
  names(refused("/api/chat", {{"options", {{"mirostat", 2}}}}), "options.mirostat");
  names(refused("/api/chat", {{"options", {{"temperature", -1}}}}), "options.temperature");
  names(refused("/api/chat", {{"messages", {{{"role", "user"}, {"content", "Hi"}, {"images", {"aGk="}}}}}}),
        "messages[0].images");
  names(refused("/api/chat", {{"tools", {{{"type", "function"}, {"function", {{"name", "f"}}}}}}}), "tools");
  names(refused("/api/chat", {{"think", true}}), "think");
  names(refused("/api/chat", {{"unknown_field", 1}}), "unknown_field");
  names(refused("/api/generate", {{"prompt", "Hi"}, {"suffix", "end"}}), "suffix");
  names(refused("/api/generate", {{"prompt", "Hi"}, {"context", {1, 2}}}), "context");
  names(refused("/api/embed", {{"input", "Hi"}, {"options", {{"temperature", 0}}}}), "options.temperature");
  CHECK(refused("/api/chat", {{"format", "yaml"}}).first == 400);
  CHECK_THAT(refused("/api/generate", {{"prompt", "Hi"}, {"format", {{"type", "string"}, {"pattern", "a+"}}}}).second,
             Catch::Contains("keyword 'pattern' is not supported"));
  CHECK(refused("/api/chat", {{"model", "llama3"}}) == std::make_pair(404, std::string("model 'llama3' not found")));
  // malformed bodies, wrong media types and unknown routes too
  auto bad_json = c.Post("/api/chat", "{\"model\": ", "application/json");
  REQUIRE(bad_json);
  CHECK(bad_json->status == 400);
  CHECK(json::parse(bad_json->body)["error"].is_string());
  auto text_body = c.Post("/api/generate", "{}", "text/plain");
  REQUIRE(text_body);
  CHECK(text_body->status == 415);
  CHECK(json::parse(text_body->body)["error"].is_string());
  auto pull = c.Post("/api/pull", json{{"model", kModel}}.dump(), "application/json");
  REQUIRE(pull);
  CHECK(pull->status == 404);
  CHECK(json::parse(pull->body)["error"].is_string());

  auto ok = post(c, "/api/chat", chat);
  REQUIRE(ok);
  CHECK(ok->status == 200);
  // Each request is counted once, under its status.
  CHECK(s.metric("hearth_requests_total{route=\"/api/chat\",code=\"400\"}") == 8);
  CHECK(s.metric("hearth_requests_total{route=\"/api/chat\",code=\"404\"}") == 1);
  CHECK(s.metric("hearth_requests_total{route=\"/api/chat\",code=\"200\"}") == 1);
  CHECK(s.metric("hearth_requests_total{route=\"/api/generate\",code=\"415\"}") == 1);
}

TEST_CASE("serve ollama: the OpenAI endpoints' keys and scopes, and adapters by model name", "[serve][ollama]") {
  auto kids = adapter_make("ollama-kids", 21);
  auto keys = test::serve_scratch() / "ollama_keys.txt";
  { std::ofstream(keys) << "sk-owner-0001\nsk-kids-0002 kids\n"; }
  test::ServeProcess s({"--api-keys", keys.string(), "--adapter", "kids=" + kids.string()});
  REQUIRE(s.port() > 0);
  auto anon = s.client(), owner = s.client("sk-owner-0001"), kid = s.client("sk-kids-0002"),
       wrong = s.client("sk-wrong-9999");
  for (const char* path : {"/api/tags", "/api/version"}) {
    INFO(path);
    auto r = anon.Get(path);
    CHECK(r->status == 401);
    CHECK(json::parse(r->body)["error"].is_string());
    CHECK(wrong.Get(path)->status == 401);
    CHECK(owner.Get(path)->status == 200);
  }
  const json raw = {
      {"model", "kids"}, {"prompt", "Once upon a time"}, {"raw", true}, {"stream", false}, {"options", kGreedy}};
  for (const char* path : {"/api/generate", "/api/chat", "/api/embed", "/api/show"}) {
    INFO(path);
    auto r = post(anon, path, raw);  // refused on its headers, before the body is read
    CHECK(r->status == 401);
    CHECK(json::parse(r->body)["error"].is_string());
  }
  // the owner sees both; the scoped key only its adapter, and may use nothing else
  auto names = [](httplib::Client& c) {
    std::vector<std::string> out;
    const auto tags = json::parse(c.Get("/api/tags")->body);
    for (const auto& m : tags["models"]) out.push_back(m["name"]);
    return out;
  };
  CHECK(names(owner) == std::vector<std::string>{kModel + ":latest", "kids:latest"});
  CHECK(names(kid) == std::vector<std::string>{"kids:latest"});
  json base = raw;
  base["model"] = kModel;
  auto [fs_, forbidden] = test::post_json(kid, "/api/generate", base);
  CHECK(fs_ == 403);
  CHECK(forbidden["error"].get<std::string>().find("may not use") != std::string::npos);
  // counted once (the guard counted a generation route's 403 a second time, /v1's too)
  CHECK(s.metric("hearth_requests_total{route=\"/api/generate\",code=\"403\"}", "sk-owner-0001") == 1);
  CHECK(test::post_json(kid, "/v1/completions", {{"model", kModel}, {"prompt", "Hi"}}).first == 403);
  CHECK(s.metric("hearth_requests_total{route=\"/v1/completions\",code=\"403\"}", "sk-owner-0001") == 1);
  CHECK(test::post_json(kid, "/api/show", {{"model", kModel}}).first == 403);
  CHECK(test::post_json(kid, "/api/embed", {{"model", kModel}, {"input", "Hi"}}).first == 403);

  // `model` picks the adapter, with or without the tag: its greedy text is /v1's for it, and not the base's
  auto ref = openai_completion(owner, "kids", "Once upon a time", 24);
  auto base_ref = openai_completion(owner, kModel, "Once upon a time", 24);
  REQUIRE(ref["choices"][0]["text"] != base_ref["choices"][0]["text"]);
  for (const char* name : {"kids", "kids:latest"}) {
    json req = raw;
    req["model"] = name;
    auto [st, gen] = test::post_json(kid, "/api/generate", req);
    REQUIRE(st == 200);
    CHECK(gen["model"] == name);  // echoed as written
    CHECK(gen["response"] == ref["choices"][0]["text"]);
  }
  auto [ss, shown] = test::post_json(kid, "/api/show", {{"model", "kids"}});
  REQUIRE(ss == 200);
  CHECK(shown["details"]["parent_model"] == kModel);
  auto [es, embedded] = test::post_json(kid, "/api/embed", {{"model", "kids"}, {"input", "Hi"}});
  REQUIRE(es == 200);
  auto [bs, base_embedded] = test::post_json(owner, "/api/embed", {{"model", kModel}, {"input", "Hi"}});
  REQUIRE(bs == 200);
  CHECK(embedded["embeddings"] != base_embedded["embeddings"]);  // the adapter's LoRA applies
}

TEST_CASE("serve ollama: /api/embed pools as /v1/embeddings, cuts inputs to the context, refuses what it cannot do",
          "[serve][ollama]") {
  test::ServeProcess s({});
  REQUIRE(s.port() > 0);
  auto c = s.client();
  const std::string text = "Once upon a time there was a cat";
  auto [st, e] = test::post_json(c, "/api/embed", {{"model", kModel + ":latest"}, {"input", {"The dog ran", text}}});
  REQUIRE(st == 200);
  CHECK(e["model"] == kModel + ":latest");
  REQUIRE(e["embeddings"].size() == 2);
  auto [vs, v1] = test::post_json(c, "/v1/embeddings", {{"model", kModel}, {"input", {"The dog ran", text}}});
  REQUIRE(vs == 200);
  CHECK(e["embeddings"][0] == v1["data"][0]["embedding"]);
  CHECK(e["embeddings"][1] == v1["data"][1]["embedding"]);
  CHECK(e["prompt_eval_count"] == v1["usage"]["prompt_tokens"]);
  CHECK(e["load_duration"] == 0);
  CHECK(e["total_duration"].get<int64_t>() > 0);

  // Longer than num_ctx: cut to its first tokens (truncate defaults to true), or refused with truncate false.
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  auto ids = tok.encode(text);
  REQUIRE(ids.size() > 4);
  auto [ts, cut] = test::post_json(c, "/api/embed",
                                   {{"model", kModel}, {"input", text}, {"options", {{"num_ctx", 4}}}});
  REQUIRE(ts == 200);
  CHECK(cut["prompt_eval_count"] == 4);
  auto [is, by_ids] = test::post_json(
      c, "/v1/embeddings", {{"model", kModel}, {"input", std::vector<int32_t>(ids.begin(), ids.begin() + 4)}});
  REQUIRE(is == 200);
  CHECK(cut["embeddings"][0] == by_ids["data"][0]["embedding"]);
  auto [fs_, refused] = test::post_json(
      c, "/api/embed", {{"model", kModel}, {"input", text}, {"truncate", false}, {"options", {{"num_ctx", 4}}}});
  CHECK(fs_ == 400);
  CHECK(refused["error"].is_string());
  CHECK(test::post_json(c, "/api/embed", {{"model", kModel}, {"input", text}, {"dimensions", 64}}).first == 200);
  CHECK(test::post_json(c, "/api/embed", {{"model", kModel}, {"input", text}, {"dimensions", 32}}).first == 400);
  // no input: Ollama's "load the model" call
  auto [ls, load] = test::post_json(c, "/api/embed", {{"model", kModel}, {"input", json::array()}});
  CHECK(ls == 200);
  CHECK(load["embeddings"] == json::array());
}

TEST_CASE("serve ollama: /api/tags, /api/show and /api/version describe what is served", "[serve][ollama]") {
  test::ServeProcess s({"--ctx", "256"});
  REQUIRE(s.port() > 0);
  auto c = s.client();
  auto tags = json::parse(c.Get("/api/tags")->body);
  REQUIRE(tags["models"].size() == 1);
  const auto& m = tags["models"][0];
  CHECK(m["name"] == kModel + ":latest");
  CHECK(m["model"] == kModel + ":latest");
  uintmax_t size = 0;
  for (const auto& f : fs::directory_iterator(test::stories_dir()))
    if (f.is_regular_file()) size += f.file_size();
  CHECK(m["size"] == size);
  CHECK(std::regex_match(m["digest"].get<std::string>(), std::regex("[0-9a-f]{64}")));
  CHECK(json::parse(c.Get("/api/tags")->body)["models"][0]["digest"] == m["digest"]);  // stable
  CHECK(std::regex_match(m["modified_at"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT[0-9:.]+Z)")));
  CHECK(m["details"] == json{{"parent_model", ""},
                             {"format", "safetensors"},
                             {"family", "llama"},
                             {"families", {"llama"}},
                             {"parameter_size", "260K"},
                             {"quantization_level", "F32"}});

  auto [ss, show] = test::post_json(c, "/api/show", {{"model", kModel}});
  REQUIRE(ss == 200);
  CHECK(show["details"] == m["details"]);
  CHECK(show["model_info"]["llama.context_length"] == 256);  // the served context, not the model's 512
  CHECK(show["model_info"]["llama.embedding_length"] == 64);
  CHECK(show["model_info"]["general.parameter_count"] == 260032);
  CHECK(show["capabilities"] == json{"completion", "embedding"});
  // no chat_template: served with ChatML, whose Ollama template and stops are given
  CHECK(show["template"].get<std::string>().find("<|im_start|>") != std::string::npos);
  CHECK(show["parameters"].get<std::string>().find("\"<|im_end|>\"") != std::string::npos);
  CHECK(show["modelfile"].get<std::string>().rfind("FROM " + kModel + "\n", 0) == 0);
  CHECK(test::post_json(c, "/api/show", {{"model", "nope"}}).first == 404);

  auto version = json::parse(c.Get("/api/version")->body);
  CHECK(std::regex_match(version["version"].get<std::string>(), std::regex(R"(\d+\.\d+\.\d+)")));

  // Nothing to generate: Ollama's "load the model" answer.
  auto [cs, chat_load] = test::post_json(c, "/api/chat", {{"model", kModel}, {"messages", json::array()}});
  CHECK(cs == 200);
  CHECK(chat_load["done"] == true);
  CHECK(chat_load["done_reason"] == "load");
  CHECK(chat_load["message"] == json{{"role", "assistant"}, {"content", ""}});
  auto [gs, gen_load] = test::post_json(c, "/api/generate", {{"model", kModel}, {"keep_alive", 0}, {"stream", false}});
  CHECK(gs == 200);
  CHECK(gen_load["done_reason"] == "load");
  CHECK(gen_load["response"] == "");
}
