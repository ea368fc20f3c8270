// Sampler: each stage against probabilities computed by hand.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "core/error.h"
#include "infer/sampler.h"

using namespace hearth;
using infer::SamplingParams;

namespace {

SamplingParams plain(float temperature) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

// Frequencies of each id over `n` draws.
std::map<int, double> frequencies(const SamplingParams& p, const std::vector<float>& logits, int n = 20000) {
  infer::Sampler s(p);
  std::map<int, double> f;
  for (int i = 0; i < n; ++i) {
    auto l = logits;
    f[s.sample(l.data(), l.size(), {}, 0)] += 1.0 / n;
  }
  return f;
}

const std::vector<float> kLogits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};

}  // namespace

TEST_CASE("greedy picks the largest logit, the first on ties", "[infer]") {
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  infer::Sampler s(plain(0));
  CHECK(s.sample(l.data(), l.size(), {}, 0) == 1);
}

TEST_CASE("repeat penalty divides positive and multiplies negative logits of recent tokens", "[infer]") {
  auto p = plain(0);
  p.repeat_penalty = 2.0f;
  std::vector<float> l = {2.0f, -2.0f, 1.5f};
  infer::Sampler s(p);
  // tokens 0 and 1 seen: 2 -> 1, -2 -> -4; token 2 (1.5) now wins
  CHECK(s.sample(l.data(), l.size(), {0, 1, 0}, 0) == 2);
  CHECK(l[0] == 1.0f);
  CHECK(l[1] == -4.0f);
  // only the last repeat_last_n tokens count
  p.repeat_last_n = 1;
  std::vector<float> l2 = {2.0f, -2.0f, 1.5f};
  infer::Sampler s2(p);
  CHECK(s2.sample(l2.data(), l2.size(), {0, 1}, 0) == 0);
  CHECK(l2[1] == -4.0f);
}

TEST_CASE("presence and frequency penalties count generated tokens only", "[infer]") {
  auto p = plain(0);
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  std::vector<float> l = {1.0f, 1.0f, 1.0f};
  infer::Sampler s(p);
  // context: prompt {2, 2} then generated {0, 0, 1}
  s.sample(l.data(), l.size(), {2, 2, 0, 0, 1}, 2);
  CHECK(l[0] == Approx(1.0f - 0.5f - 0.5f));
  CHECK(l[1] == Approx(1.0f - 0.5f - 0.25f));
  CHECK(l[2] == 1.0f);
}

TEST_CASE("temperature 1 samples the softmax distribution", "[infer]") {
  auto f = frequencies(plain(1), kLogits);
  CHECK(f[0] == Approx(0.5).margin(0.015));
  CHECK(f[1] == Approx(0.3).margin(0.015));
  CHECK(f[2] == Approx(0.2).margin(0.015));
}

TEST_CASE("temperature 2 flattens: p_i proportional to sqrt(p_i)", "[infer]") {
  double z = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.2);
  auto f = frequencies(plain(2), kLogits);
  CHECK(f[0] == Approx(std::sqrt(0.5) / z).margin(0.015));
  CHECK(f[2] == Approx(std::sqrt(0.2) / z).margin(0.015));
}

TEST_CASE("top-k, top-p and min-p keep the expected candidates", "[infer]") {
  SECTION("top_k 2 renormalizes over {0, 1}") {
    auto p = plain(1);
    p.top_k = 2;
    auto f = frequencies(p, kLogits);
    CHECK(f[0] == Approx(0.5 / 0.8).margin(0.015));
    CHECK(f.count(2) == 0);
  }
  SECTION("top_p 0.6 keeps the smallest prefix reaching 0.6: {0, 1}") {
    auto p = plain(1);
    p.top_p = 0.6f;
    auto f = frequencies(p, kLogits);
    CHECK(f[1] == Approx(0.3 / 0.8).margin(0.015));
    CHECK(f.count(2) == 0);
  }
  SECTION("top_p 0.5 keeps only the first") {
    auto p = plain(1);
    p.top_p = 0.5f;
    CHECK(frequencies(p, kLogits, 500)[0] == Approx(1.0));
  }
  SECTION("min_p 0.5 keeps p >= 0.25: {0, 1}") {
    auto p = plain(1);
    p.min_p = 0.5f;
    auto f = frequencies(p, kLogits);
    CHECK(f[0] == Approx(0.625).margin(0.015));
    CHECK(f.count(2) == 0);
  }
}

TEST_CASE("sampling is reproducible for a seed and varies across seeds", "[infer]") {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = std::sin(i * 0.7f);
  auto draw = [&](uint64_t seed) {
    auto p = plain(1);
    p.seed = seed;
    infer::Sampler s(p);
    std::vector<int> out;
    for (int i = 0; i < 50; ++i) {
      auto l = logits;
      out.push_back(s.sample(l.data(), l.size(), {}, 0));
    }
    return out;
  };
  CHECK(draw(42) == draw(42));
  CHECK(draw(42) != draw(43));
}

TEST_CASE("invalid sampling values are rejected naming the field", "[infer]") {
  SamplingParams p;
  p.top_p = 0;
  CHECK_THROWS_AS(p.validate(), ConfigError);
  CHECK_THROWS_WITH(p.validate(), Catch::Matchers::Contains("top_p"));
  p = SamplingParams();
  p.temperature = -1;
  CHECK_THROWS_WITH(p.validate(), Catch::Matchers::Contains("temperature"));
}

TEST_CASE("token_logprob is the log-softmax of the raw logits, with the top n most likely first", "[infer]") {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f};
  const double lse = std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0));
  auto r = infer::token_logprob(logits.data(), logits.size(), 2, 3);
  CHECK(r.chosen.token == 2);
  CHECK(r.chosen.logprob == Approx(2.0 - lse).epsilon(1e-6));
  REQUIRE(r.top.size() == 3);
  CHECK(r.top[0].token == 1);  // ties: the lower id first
  CHECK(r.top[1].token == 3);
  CHECK(r.top[2].token == 2);
  CHECK(r.top[0].logprob == Approx(3.0 - lse).epsilon(1e-6));
  CHECK(infer::token_logprob(logits.data(), logits.size(), 0, 0).top.empty());
  CHECK(infer::token_logprob(logits.data(), logits.size(), 0, 9).top.size() == 4);
}
