// End to end: `echo: true` on POST /v1/completions, against `hearth serve` run as a user would. The echoed text
// is checked against the same request without echo, and the prompt tokens' log-probabilities against an
// independent forward over the prompt here (CausalLM::forward without a cache, then log_softmax in float64).
#include <catch2/catch.hpp>

#include <map>

#include "model/causal_lm.h"
#include "serve_process.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;
using json = nlohmann::json;

namespace {

const std::string kModel = "stories260K";
const std::string kPrompt = "Once upon a time";

json request(const json& prompt, int max_tokens) {
  return {{"model", kModel}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

json post_ok(const test::ServeProcess& s, const json& req) {
  auto c = s.client();
  auto [status, body] = test::post_json(c, "/v1/completions", req);
  INFO(req.dump() << " -> " << body.dump());
  REQUIRE(status == 200);
  return body;
}

// A streamed response, choice by choice: the concatenated text, the finish reason, and the chunks' logprobs
// arrays concatenated into one completions-shaped object (null when no chunk had any).
struct StreamedChoice {
  std::string text, finish;
  json logprobs;
};

std::map<size_t, StreamedChoice> stream_choices(const std::string& body, bool* done) {
  std::map<size_t, StreamedChoice> out;
  std::istringstream in(body);
  std::string line;
  *done = false;
  while (std::getline(in, line)) {
    if (line == "data: [DONE]") *done = true;
    if (line.rfind("data: {", 0) != 0) continue;
    auto j = json::parse(line.substr(6));
    REQUIRE(!j.contains("error"));
    for (const auto& c : j["choices"]) {
      auto& x = out[c["index"].get<size_t>()];
      x.text += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) x.finish = c["finish_reason"];
      if (c["logprobs"].is_null()) continue;
      if (x.logprobs.is_null())
        x.logprobs = {{"tokens", json::array()},
                      {"token_logprobs", json::array()},
                      {"top_logprobs", json::array()},
                      {"text_offset", json::array()}};
      for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
        for (const auto& v : c["logprobs"][k]) x.logprobs[k].push_back(v);
    }
  }
  return out;
}

// POSTs `req` (a streamed completions request) and returns its choices, checking the stream ended with [DONE].
std::map<size_t, StreamedChoice> post_streamed(const test::ServeProcess& s, const json& req) {
  auto r = s.client().Post("/v1/completions", req.dump(), "application/json");
  REQUIRE(r);
  bool done = false;
  auto streamed = stream_choices(r->body, &done);
  CHECK(done);
  return streamed;
}

// Two completions `logprobs` objects agree: the same tokens and offsets, values within 1e-4 (null where null).
void logprobs_same(const json& a, const json& b) {
  REQUIRE(a["tokens"] == b["tokens"]);
  CHECK(a["text_offset"] == b["text_offset"]);
  for (size_t i = 0; i < a["tokens"].size(); ++i) {
    INFO("entry " << i);
    REQUIRE(a["token_logprobs"][i].is_null() == b["token_logprobs"][i].is_null());
    if (a["token_logprobs"][i].is_null()) continue;
    CHECK(std::abs(a["token_logprobs"][i].get<double>() - b["token_logprobs"][i].get<double>()) < 1e-4);
    REQUIRE(a["top_logprobs"][i].size() == b["top_logprobs"][i].size());
    for (const auto& [k, v] : a["top_logprobs"][i].items()) {
      REQUIRE(b["top_logprobs"][i].contains(k));
      CHECK(std::abs(v.get<double>() - b["top_logprobs"][i][k].get<double>()) < 1e-4);
    }
  }
}

// The prompt's entries (the first `ids.size()` of `lp`) against a forward over the prompt and a log-softmax:
// the first token null, token i's value the log-probability of ids[i] after ids[0, i), its top `k` alternatives
// the k largest values (tolerance 1e-4); each token's text found at its text_offset in `text`.
void prompt_logprobs_check(const model::CausalLM& m, const tokenizer::Tokenizer& tok, const std::vector<int32_t>& ids,
                           const json& lp, size_t k, const std::string& text) {
  c10::InferenceMode guard;
  auto t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end())).unsqueeze(0);
  auto pos = torch::arange(t.size(1), torch::kInt64).unsqueeze(0);
  auto logp = torch::log_softmax(m.forward(t, pos, torch::Tensor(), nullptr)[0].to(torch::kFloat64), -1);  // [T, V]
  REQUIRE(lp["tokens"].size() >= ids.size());
  CHECK(lp["tokens"][0] == tok.decode({ids[0]}));
  CHECK(lp["token_logprobs"][0].is_null());
  CHECK(lp["top_logprobs"][0].is_null());
  CHECK(lp["text_offset"][0] == 0);
  for (size_t i = 1; i < ids.size(); ++i) {
    INFO("prompt token " << i << " '" << lp["tokens"][i].get<std::string>() << "'");
    auto row = logp[static_cast<int64_t>(i) - 1];
    const double got = lp["token_logprobs"][i].get<double>();
    CHECK(std::abs(got - row[ids[i]].item<double>()) < 1e-4);
    std::vector<double> top;
    for (const auto& [name, v] : lp["top_logprobs"][i].items()) top.push_back(v.get<double>());
    std::sort(top.rbegin(), top.rend());
    REQUIRE(top.size() == k);
    auto best = std::get<0>(row.topk(static_cast<int64_t>(k)));
    for (size_t j = 0; j < k; ++j) CHECK(std::abs(top[j] - best[static_cast<int64_t>(j)].item<double>()) < 1e-4);
    // Its text starts at its offset (the first word's leading space is the decoder's, which the text lacks).
    const std::string piece = lp["tokens"][i];
    const size_t at = lp["text_offset"][i];
    CHECK(at >= lp["text_offset"][i - 1].get<size_t>());
    const bool here = text.compare(at, piece.size(), piece) == 0 ||
                      (piece.size() > 1 && piece[0] == ' ' && text.compare(at, piece.size() - 1, piece.substr(1)) == 0);
    CHECK(here);
  }
}

// The entries after the prompt's are the same request's without echo, their text_offset moved by the prompt.
void generated_logprobs_check(const json& echoed, const json& plain, size_t n_prompt, size_t prompt_chars) {
  json tail = {{"tokens", json::array()},
               {"token_logprobs", json::array()},
               {"top_logprobs", json::array()},
               {"text_offset", json::array()}};
  for (size_t i = n_prompt; i < echoed["tokens"].size(); ++i)
    for (const char* k : {"tokens", "token_logprobs", "top_logprobs"}) tail[k].push_back(echoed[k][i]);
  for (size_t i = n_prompt; i < echoed["tokens"].size(); ++i)
    tail["text_offset"].push_back(echoed["text_offset"][i].get<size_t>() - prompt_chars);
  logprobs_same(tail, plain);
}

}  // namespace

TEST_CASE("serve: echo prepends the prompt to every choice, whole and streamed, n = 2 and token-id prompts",
          "[serve]") {
  test::ServeProcess s({});
  REQUIRE(s.port() > 0);
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  const auto plain = post_ok(s, request(kPrompt, 12));
  const std::string reply = plain["choices"][0]["text"];
  REQUIRE(!reply.empty());
  json req = request(kPrompt, 12);
  req["echo"] = true;
  req["n"] = 2;
  auto whole = post_ok(s, req);
  REQUIRE(whole["choices"].size() == 2);
  for (const auto& c : whole["choices"]) {
    CHECK(c["text"] == kPrompt + reply);
    CHECK(c["finish_reason"] == plain["choices"][0]["finish_reason"]);
    CHECK(c["logprobs"].is_null());
  }
  CHECK(whole["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]);  // the prompt is counted once
  CHECK(whole["usage"]["completion_tokens"] == 2 * plain["usage"]["completion_tokens"].get<int>());
  req["stream"] = true;
  auto streamed = post_streamed(s, req);
  REQUIRE(streamed.size() == 2);
  for (const auto& [i, c] : streamed) {
    INFO("choice " << i);
    CHECK(c.text == kPrompt + reply);
    CHECK(c.finish == plain["choices"][0]["finish_reason"]);
    CHECK(c.logprobs.is_null());
  }
  // A prompt of token ids echoes its text (decoded without the BOS the tokenizer added).
  const auto ids = tok.encode(kPrompt);
  auto by_ids = post_ok(s,
                        {{"model", kModel}, {"prompt", ids}, {"max_tokens", 12}, {"temperature", 0}, {"echo", true}});
  CHECK(by_ids["choices"][0]["text"] == kPrompt + reply);
  // Several prompts: each choice echoes its own.
  auto two = post_ok(
      s, {{"model", kModel}, {"prompt", {"Once", "The cat"}}, {"max_tokens", 4}, {"temperature", 0}, {"echo", true}});
  REQUIRE(two["choices"].size() == 2);
  CHECK(two["choices"][0]["text"].get<std::string>().rfind("Once", 0) == 0);
  CHECK(two["choices"][1]["text"].get<std::string>().rfind("The cat", 0) == 0);
  // echo: false asks for nothing
  req = request(kPrompt, 12);
  req["echo"] = false;
  CHECK(post_ok(s, req)["choices"][0]["text"] == reply);
}

TEST_CASE("serve: echo with logprobs scores the prompt with the model's log-softmax, the first token null", "[serve]") {
  test::ServeProcess s({});
  REQUIRE(s.port() > 0);
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  auto m = model::causal_lm_load(test::stories_dir());
  const auto ids = tok.encode(kPrompt);
  REQUIRE(ids.size() >= 3);
  json req = request(kPrompt, 10);
  req["logprobs"] = 3;
  const auto plain = post_ok(s, req);
  const auto& plain_lp = plain["choices"][0]["logprobs"];
  req["echo"] = true;
  req["n"] = 2;
  auto whole = post_ok(s, req);
  REQUIRE(whole["choices"].size() == 2);
  for (const auto& c : whole["choices"]) {
    CHECK(c["text"] == kPrompt + plain["choices"][0]["text"].get<std::string>());
    REQUIRE(c["logprobs"]["tokens"].size() == ids.size() + plain_lp["tokens"].size());
    prompt_logprobs_check(*m, tok, ids, c["logprobs"], 3, kPrompt);
    generated_logprobs_check(c["logprobs"], plain_lp, ids.size(), kPrompt.size());  // ASCII: bytes = code points
  }
  req["stream"] = true;
  auto streamed = post_streamed(s, req);
  REQUIRE(streamed.size() == 2);
  for (const auto& [i, c] : streamed) {
    INFO("streamed choice " << i);
    CHECK(c.text == whole["choices"][i]["text"]);
    logprobs_same(c.logprobs, whole["choices"][i]["logprobs"]);
  }
  // logprobs 0: the chosen tokens' values only, the first still null
  req = request(kPrompt, 4);
  req["echo"] = true;
  req["logprobs"] = 0;
  auto zero = post_ok(s, req)["choices"][0]["logprobs"];
  CHECK(zero["token_logprobs"][0].is_null());
  CHECK(zero["top_logprobs"][0].is_null());
  CHECK(zero["top_logprobs"][1] == json::object());
}

TEST_CASE("serve: echo with max_tokens 0 returns just the prompt (and its logprobs), whole and streamed", "[serve]") {
  test::ServeProcess s({});
  REQUIRE(s.port() > 0);
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  auto m = model::causal_lm_load(test::stories_dir());
  const auto ids = tok.encode(kPrompt);
  json req = request(kPrompt, 0);
  req["echo"] = true;
  req["logprobs"] = 2;
  req["n"] = 2;
  auto whole = post_ok(s, req);
  REQUIRE(whole["choices"].size() == 2);
  for (const auto& c : whole["choices"]) {
    CHECK(c["text"] == kPrompt);
    CHECK(c["finish_reason"] == "length");
    CHECK(c["logprobs"]["tokens"].size() == ids.size());
    prompt_logprobs_check(*m, tok, ids, c["logprobs"], 2, kPrompt);
  }
  CHECK(whole["usage"]["prompt_tokens"] == ids.size());
  CHECK(whole["usage"]["completion_tokens"] == 0);
  req["stream"] = true;
  req["stream_options"] = {{"include_usage", true}};
  auto r = s.client().Post("/v1/completions", req.dump(), "application/json");
  REQUIRE(r);
  bool done = false;
  auto streamed = stream_choices(r->body, &done);
  CHECK(done);
  REQUIRE(streamed.size() == 2);
  for (const auto& [i, c] : streamed) {
    CHECK(c.text == kPrompt);
    CHECK(c.finish == "length");
    logprobs_same(c.logprobs, whole["choices"][i]["logprobs"]);
  }
  CHECK(r->body.find("\"completion_tokens\":0") != std::string::npos);
  // max_tokens 0 without echo asks for nothing: still a 400 naming it
  auto c = s.client();
  auto [status, body] = test::post_json(c, "/v1/completions", request(kPrompt, 0));
  CHECK(status == 400);
  CHECK(body["error"]["param"] == "max_tokens");
  // nothing was generated or queued for these
  CHECK(s.metric("hearth_active_sequences") == 0);
}
