// End to end: `hearth serve`'s prefix cache (docs/serve.md, "Prefix cache") changes no output. The same requests go
// to a server with the cache and to one started with --no-prefix-cache: requests sharing a system prompt and the
// second turn of a conversation get the same greedy text and the same log-probabilities (within 1e-5), and
// /metrics shows that the cache served them; an adapter's requests never reuse the base model's blocks, nor
// those of the adapter before a reload.
#include <catch2/catch.hpp>

#include <future>

#include "model/checkpoint.h"
#include "model/lora.h"
#include "random_adapter.h"
#include "serve_process.h"

using namespace hearth;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kModel = "stories260K";

// A long system prompt: several blocks of the prefix cache (16 tokens each) in the bundled model's vocabulary.
const std::string kSystem =
    "You are a kind storyteller for small children. You tell short stories about animals, friends and the sea. "
    "Every story has a happy ending, simple words and a little lesson about sharing, patience or courage.";

json chat_req(const json& messages, int max_tokens) {
  return {{"model", kModel},  {"messages", messages}, {"max_completion_tokens", max_tokens},
          {"temperature", 0}, {"logprobs", true},     {"top_logprobs", 5}};
}

// A chat reply's text and its logprobs entries, from either server.
struct Reply {
  std::string text;
  json logprobs;
  int prompt_tokens = 0, completion_tokens = 0;
};

Reply chat(const test::ServeProcess& s, const json& messages, int max_tokens = 24) {
  auto c = s.client();
  auto [status, body] = test::post_json(c, "/v1/chat/completions", chat_req(messages, max_tokens));
  INFO(body.dump());
  REQUIRE(status == 200);
  return {body["choices"][0]["message"]["content"], body["choices"][0]["logprobs"]["content"],
          body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]};
}

// Same text, same tokens, and every log-probability (chosen and top 5) within `tolerance`; returns the largest
// difference.
double replies_match(const Reply& on, const Reply& off, double tolerance) {
  CHECK(on.text == off.text);
  CHECK(on.prompt_tokens == off.prompt_tokens);
  REQUIRE(on.logprobs.size() == off.logprobs.size());
  double worst = 0;
  auto close = [&](const json& a, const json& b) {
    const double d = std::abs(a.get<double>() - b.get<double>());
    worst = std::max(worst, d);
    return d <= tolerance;
  };
  for (size_t i = 0; i < on.logprobs.size(); ++i) {
    const auto &a = on.logprobs[i], &b = off.logprobs[i];
    INFO("token " << i << ": " << a.dump() << " vs " << b.dump());
    CHECK(a["token"] == b["token"]);
    CHECK(close(a["logprob"], b["logprob"]));
    REQUIRE(a["top_logprobs"].size() == b["top_logprobs"].size());
    for (size_t j = 0; j < a["top_logprobs"].size(); ++j) {
      CHECK(a["top_logprobs"][j]["token"] == b["top_logprobs"][j]["token"]);
      CHECK(close(a["top_logprobs"][j]["logprob"], b["top_logprobs"][j]["logprob"]));
    }
  }
  return worst;
}

// A metric once it has reached `want` (the engine publishes its counters after each step, which may be just
// after the client has its last byte), or its value after ~2 s.
double settled(const test::ServeProcess& s, const std::string& name, double want) {
  double v = s.metric(name);
  for (int i = 0; i < 200 && v != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    v = s.metric(name);
  }
  return v;
}

fs::path adapter_make(const std::string& name, uint64_t seed) {
  return test::random_adapter_make(test::serve_scratch() / "prefix-adapters" / name, seed);
}

}  // namespace

// With --prefill-chunk 16 (the block size) both servers compute every prompt in the same 16-token chunks, so the
// blocks the cache copies are exactly what the server without it computes: the same numbers. With larger chunks the
// cache splits a prompt where the other server does not, and the BLAS's float32 rounding depends on the number of
// rows multiplied (as with any other --prefill-chunk): differences of ~1e-5, within the 1e-4 the other serve tests
// allow against an independent forward. A reply's blocks were computed one token at a time (decode steps), so turn 2
// differs at that level too.
TEST_CASE("serve: the prefix cache changes no output - shared system prompts and a 2-turn conversation", "[serve]") {
  const std::string chunk = GENERATE(as<std::string>(), "16", "512");
  const double tolerance = chunk == "16" ? 1e-5 : 1e-4;
  INFO("--prefill-chunk " << chunk);
  test::ServeProcess on({"--prefill-chunk", chunk}), off({"--no-prefix-cache", "--prefill-chunk", chunk});
  REQUIRE(on.port() > 0);
  REQUIRE(off.port() > 0);
  const json system = {{"role", "system"}, {"content", kSystem}};
  const std::vector<std::string> users = {"Tell me a story about a cat.", "Tell me a story about a fish.",
                                          "Tell me a story about a dog who shares."};
  std::vector<Reply> first;
  for (const auto& u : users) {
    const json messages = {system, {{"role", "user"}, {"content", u}}};
    auto r_on = chat(on, messages), r_off = chat(off, messages);
    const double worst = replies_match(r_on, r_off, tolerance);
    if (chunk == "16") CHECK(worst == 0);  // the very same computation
    first.push_back(r_on);
  }
  REQUIRE(first[0].prompt_tokens > 48);  // the system prompt spans several blocks
  // The 2nd and 3rd requests reused the system prompt's blocks (the 1st had nothing to reuse).
  const double hits = on.metric("hearth_prefix_cache_hit_tokens_total");  // counted at admission, long published
  CHECK(hits >= 2 * 48);
  CHECK(on.metric("hearth_prefix_cache_blocks") > 0);
  CHECK(off.metric("hearth_prefix_cache_hit_tokens_total") == 0);
  CHECK(off.metric("hearth_prefix_cache_blocks") == 0);

  // Turn 2 of the first conversation: its prompt starts with turn 1's prompt and reply, both cached.
  const json turn2 = {system,
                      {{"role", "user"}, {"content", users[0]}},
                      {{"role", "assistant"}, {"content", first[0].text}},
                      {{"role", "user"}, {"content", "And then what happened?"}}};
  auto t2_on = chat(on, turn2), t2_off = chat(off, turn2);
  replies_match(t2_on, t2_off, tolerance);
  const double hits2 = on.metric("hearth_prefix_cache_hit_tokens_total");
  CHECK(hits2 - hits > first[0].prompt_tokens);  // turn 1's prompt and part of its reply

  // The same requests at once: admitted one after the other, each reusing what the one before stored, and decoded
  // in one batch (whose float32 rounding differs from one row's: the 1e-4 of the other serve tests).
  std::vector<std::future<std::pair<int, json>>> futures;
  for (const auto& u : users)
    futures.push_back(std::async(std::launch::async, [&on, system, u] {
      auto c = on.client();
      return test::post_json(c, "/v1/chat/completions", chat_req({system, {{"role", "user"}, {"content", u}}}, 24));
    }));
  for (size_t i = 0; i < futures.size(); ++i) {
    auto [status, body] = futures[i].get();
    REQUIRE(status == 200);
    const auto& choice = body["choices"][0];
    replies_match({choice["message"]["content"], choice["logprobs"]["content"], body["usage"]["prompt_tokens"],
                   body["usage"]["completion_tokens"]},
                  first[i], 1e-4);
  }
}

TEST_CASE("serve: the prefix cache never gives an adapter the base model's blocks, nor a reloaded adapter old ones",
          "[serve]") {
  const auto kids = adapter_make("kids", 21);
  test::ServeProcess s({"--adapter", "kids=" + kids.string()}),
      off({"--adapter", "kids=" + kids.string(), "--no-prefix-cache"});
  REQUIRE(s.port() > 0);
  REQUIRE(off.port() > 0);
  const json messages = {{{"role", "system"}, {"content", kSystem}}, {{"role", "user"}, {"content", "A story?"}}};
  auto ask = [&](const test::ServeProcess& server, const std::string& model) {
    json req = chat_req(messages, 12);
    req["model"] = model;
    auto c = server.client();
    auto [status, body] = test::post_json(c, "/v1/chat/completions", req);
    INFO(body.dump());
    REQUIRE(status == 200);
    return Reply{body["choices"][0]["message"]["content"], body["choices"][0]["logprobs"]["content"],
                 body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]};
  };
  const std::string hit = "hearth_prefix_cache_hit_tokens_total", miss = "hearth_prefix_cache_miss_tokens_total";
  auto base1 = ask(s, kModel);
  // Stored when the sequence ended: the whole blocks of its prompt and reply (all but the last token sampled, never fed
  // back). Asking again restores those before the prompt's last token, the last block's agreeing part included.
  const int P = base1.prompt_tokens, C = base1.completion_tokens, H = std::min(P - 1, (P + C - 1) / 16 * 16);
  REQUIRE(H >= 32);
  CHECK(settled(s, miss, P) == P);
  CHECK(settled(s, hit, 0) == 0);
  auto base2 = ask(s, kModel);  // the base model's own blocks
  CHECK(settled(s, hit, H) == H);
  replies_match(base2, base1, 1e-4);

  auto kids1 = ask(s, "kids");  // same prompt, another model: prefilled in full
  CHECK(settled(s, miss, 3 * P - H) == 3 * P - H);
  CHECK(s.metric(hit) == H);
  CHECK(kids1.text != base1.text);
  replies_match(kids1, ask(off, "kids"), 1e-4);
  auto kids2 = ask(s, "kids");  // its own blocks
  CHECK(settled(s, hit, 2 * H) == 2 * H);
  replies_match(kids2, kids1, 1e-4);

  // Reloaded (same files): a new adapter, so nothing of the old one's is reused.
  auto admin = s.client().Post("/admin/adapters", json({{"name", "kids"}, {"path", kids.string()}}).dump(),
                               "application/json");
  REQUIRE(admin);
  REQUIRE(admin->status == 200);
  auto kids3 = ask(s, "kids");
  CHECK(settled(s, miss, 5 * P - 2 * H) == 5 * P - 2 * H);
  CHECK(s.metric(hit) == 2 * H);
  replies_match(kids3, kids1, 1e-4);
}
