// infer::Sequence and the batch inputs of a step — the decode engine shared by generate and serve: the
// budget rule, how a sequence ends (stop token, stop string, budget) and what text each token releases,
// and the tensors a prefill or decode step feeds the model.
#include <catch2/catch.hpp>

#include "infer/sequence.h"
#include "test_paths.h"

using namespace hearth;

namespace {

const tokenizer::Tokenizer& tok() {
  static tokenizer::Tokenizer t = tokenizer::Tokenizer::load(test::stories_dir());
  return t;
}

infer::GenerationRequest request(std::vector<infer::TokenId> prompt, int max_tokens) {
  infer::GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.stop_token_ids = {2};
  return r;
}

// Ids of `text` without BOS.
std::vector<infer::TokenId> ids(const std::string& text) {
  tokenizer::EncodeOptions o;
  o.add_special_tokens = false;
  return tok().encode(text, o);
}

}  // namespace

TEST_CASE("a sequence's budget is max_tokens within the context left after its prompt", "[infer][sequence]") {
  CHECK(infer::Sequence(request({1, 5, 6}, 100), tok(), 20).budget() == 17);
  CHECK(infer::Sequence(request({1, 5, 6}, 4), tok(), 20).budget() == 4);
  CHECK(infer::Sequence(request({1, 5, 6}, -3), tok(), 20).budget() == 0);
  CHECK(infer::Sequence(request(std::vector<infer::TokenId>(25, 7), 8), tok(), 20).budget() == 0);
}

TEST_CASE("a stop token ends a sequence without joining the output", "[infer][sequence]") {
  infer::Sequence s(request({1}, 10), tok(), 64);
  auto first = ids("Once");
  auto e = s.accept(first[0]);
  CHECK(e.kept);
  e = s.accept(2);
  CHECK_FALSE(e.kept);
  CHECK(s.finished());
  CHECK(s.finish_reason() == "stop");
  CHECK(s.generated() == std::vector<infer::TokenId>{first[0]});
  CHECK(s.context() == std::vector<infer::TokenId>{1, first[0]});
  CHECK_FALSE(s.accept(first[0]).kept);  // nothing after the end
}

TEST_CASE("the budget ends a sequence with 'length' and releases the held-back text", "[infer][sequence]") {
  auto t = ids("Once upon a time");
  REQUIRE(t.size() >= 3);
  auto r = request({1}, static_cast<int>(t.size()));
  r.stop = {tok().decode(t) + ", there"};  // the text is a prefix of it the whole way, so it is held back
  infer::Sequence s(r, tok(), 64);
  std::string text;
  for (size_t i = 0; i < t.size(); ++i) {
    auto e = s.accept(t[i]);
    CHECK(e.kept);
    if (i + 1 < t.size()) CHECK(e.text.empty());
    text += e.text;
  }
  CHECK(s.finished());
  CHECK(s.finish_reason() == "length");
  CHECK(text == tok().decode(t));
}

TEST_CASE("a stop string ends a sequence and never reaches the output", "[infer][sequence]") {
  auto t = ids("Once upon a time there was a cat");
  auto r = request({1}, 100);
  r.stop = {" time"};
  infer::Sequence s(r, tok(), 64);
  std::string text;
  for (auto id : t) {
    text += s.accept(id).text;
    if (s.finished()) break;
  }
  CHECK(s.finish_reason() == "stop");
  const std::string full = tok().decode(t);
  REQUIRE(full.find(" time") != std::string::npos);
  CHECK(text == full.substr(0, full.find(" time")));
  CHECK(s.finish("length").empty());  // already finished: no-op
  CHECK(s.finish_reason() == "stop");
}

TEST_CASE("prefill inputs right-pad each row's next prompt tokens", "[infer][sequence]") {
  infer::Sequence a(request({1, 10, 11}, 5), tok(), 64), b(request({1, 20, 21, 22, 23}, 5), tok(), 64);
  b.prefill_advance(2);  // b's first two tokens are already in the cache
  auto in = infer::prefill_inputs({&a, nullptr, &b}, {3, 0, 2});
  REQUIRE(in.tokens.sizes().vec() == std::vector<int64_t>{3, 3});
  CHECK(torch::equal(in.tokens, torch::tensor({{1, 10, 11}, {0, 0, 0}, {21, 22, 0}})));
  CHECK(torch::equal(in.positions, torch::tensor({{0, 1, 2}, {0, 1, 2}, {2, 3, 4}})));
  CHECK(torch::equal(in.valid, torch::tensor({{true, true, true}, {false, false, false}, {true, true, false}})));
  CHECK(in.adapters.empty());
}

TEST_CASE("decode inputs feed each live row's last token, idle rows are padding", "[infer][sequence]") {
  infer::Sequence a(request({1, 10, 11}, 5), tok(), 64), b(request({1, 20}, 5), tok(), 64);
  a.accept(30);
  b.accept(40);
  b.accept(41);
  auto all_live = infer::decode_inputs({&a, &b});
  CHECK(torch::equal(all_live.tokens, torch::tensor({{30}, {41}})));
  CHECK(torch::equal(all_live.positions, torch::tensor({{3}, {3}})));
  CHECK_FALSE(all_live.valid.defined());  // every row live: no mask needed
  b.accept(2);                            // stop token: b is done
  auto in = infer::decode_inputs({&a, nullptr, &b});
  CHECK(torch::equal(in.tokens, torch::tensor({{30}, {0}, {0}})));
  REQUIRE(in.valid.defined());
  CHECK(torch::equal(in.valid, torch::tensor({{true}, {false}, {false}})));
}

namespace {

// A row of logits over the vocabulary whose largest value is at `id` (greedy picks it).
std::vector<float> logits_peaked(infer::TokenId id) {
  std::vector<float> row(tok().vocab_size());
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<float>(i % 7) * 0.25f;
  row[id] = 5.0f;
  return row;
}

// Feeds `tokens` greedily through sample() and accept(); the output text and the reported log-probabilities.
std::pair<std::string, std::vector<infer::TokenLogprob>> feed(infer::Sequence& s,
                                                              const std::vector<infer::TokenId>& tokens) {
  std::string text;
  std::vector<infer::TokenLogprob> reported;
  for (auto id : tokens) {
    auto row = logits_peaked(id);
    REQUIRE(s.sample(row.data(), row.size()) == id);
    auto e = s.accept(id);
    text += e.text;
    reported.insert(reported.end(), e.logprobs.begin(), e.logprobs.end());
    if (s.finished()) break;
  }
  return {text, reported};
}

}  // namespace

TEST_CASE("log-probabilities: every token once with its text as output and none past a stop string",
          "[infer][sequence]") {
  const auto t = ids("Once upon a time there was a cat");
  auto r = request({1}, 100);
  r.sampling.temperature = 0;
  r.logprobs = 3;
  r.sampling.repeat_penalty = 1.5f;  // changes the sampler's logits, never the reported values
  {
    infer::Sequence s(r, tok(), 64);
    auto [text, reported] = feed(s, t);
    auto stop = s.accept(2);  // a stop token is not reported
    CHECK(stop.logprobs.empty());
    REQUIRE(reported.size() == t.size());
    std::string joined;
    for (size_t i = 0; i < t.size(); ++i) {
      CHECK(reported[i].chosen.token == t[i]);
      CHECK(reported[i].text_offset == joined.size());  // ASCII: code points are bytes
      joined += reported[i].chosen.text;
      REQUIRE(reported[i].top.size() == 3);
      CHECK(reported[i].top[0].token == t[i]);
      CHECK(reported[i].top[0].logprob == reported[i].chosen.logprob);
      auto row = logits_peaked(t[i]);
      CHECK(reported[i].chosen.logprob == Approx(infer::token_logprob(row.data(), row.size(), t[i], 0).chosen.logprob));
    }
    CHECK(joined == text);
    CHECK(text == tok().decode(t));
  }
  {
    r.stop = {" time"};  // a whole token here: the tokens before it are exactly the text
    infer::Sequence s(r, tok(), 64);
    auto [text, reported] = feed(s, t);
    CHECK(s.finish_reason() == "stop");
    std::string joined;
    for (const auto& x : reported) joined += x.chosen.text;
    CHECK(joined == text);
    CHECK(reported.size() < t.size() - 1);
  }
  {
    r.logprobs = -1;  // not asked: nothing reported
    infer::Sequence s(r, tok(), 64);
    CHECK(feed(s, t).second.empty());
  }
}

TEST_CASE("log-probabilities: a token that is part of a character reports its own bytes", "[infer][sequence]") {
  // "é" is two byte-fallback tokens in stories260K's vocabulary, <0xC3> <0xA9>: neither is text alone.
  const infer::TokenId c3 = *tok().token_to_id("<0xC3>"), a9 = *tok().token_to_id("<0xA9>");
  auto r = request({1}, 10);
  r.sampling.temperature = 0;
  r.logprobs = 0;
  infer::Sequence s(r, tok(), 64);
  std::vector<infer::TokenLogprob> reported;
  for (infer::TokenId t : {c3, a9}) {
    auto row = logits_peaked(t);
    REQUIRE(s.sample(row.data(), row.size()) == t);
    auto e = s.accept(t);
    reported.insert(reported.end(), e.logprobs.begin(), e.logprobs.end());
  }
  REQUIRE(reported.size() == 2);
  CHECK(reported[0].chosen.text == "\xEF\xBF\xBD");  // U+FFFD: not text on its own
  CHECK(reported[0].chosen.bytes == "\xC3");
  CHECK(reported[1].chosen.bytes == "\xA9");
  CHECK(reported[0].chosen.bytes + reported[1].chosen.bytes == "\xC3\xA9");  // é
}
