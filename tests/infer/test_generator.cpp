// Generation end to end on the stories260K model: greedy equals the reference ids, batching does not change
// results, stop strings and tokens end generation, and streamed text equals the final text.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "infer/generator.h"
#include "infer/sequence.h"
#include "io/json_file.h"
#include "test_paths.h"

using namespace hearth;

namespace {

struct Fixture {
  std::unique_ptr<model::CausalLM> model_owner = model::causal_lm_load(test::stories_dir());
  const model::CausalLM& model = *model_owner;
  tokenizer::Tokenizer tokenizer = tokenizer::Tokenizer::load(test::stories_dir());
};

Fixture& fx() {
  static Fixture f;
  return f;
}

std::vector<int32_t> reference_ids() {
  auto v = io::json_read(test::stories_dir() / "expected.json")["greedy_from_bos_64_ids"].get<std::vector<int32_t>>();
  return v;
}

infer::GenerationRequest greedy(std::vector<int32_t> prompt, int max_tokens) {
  infer::GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.stop_token_ids = infer::stop_ids_default(fx().model, fx().tokenizer);
  return r;
}

}  // namespace

TEST_CASE("StopMatcher holds back possible stop prefixes and cuts at the stop", "[infer]") {
  infer::StopMatcher m({"END", "\n\n"});
  CHECK(m.push("hello E") == "hello ");
  CHECK(m.push("N") == "");
  CHECK(m.push("D and more") == "");
  CHECK(m.stopped());
  infer::StopMatcher m2({"END"});
  CHECK(m2.push("EN") == "");
  CHECK(m2.push("x") == "ENx");
  CHECK(m2.push("E") == "");
  CHECK(m2.flush() == "E");
}

TEST_CASE("greedy generation from BOS reproduces the reference ids", "[infer]") {
  auto want = reference_ids();
  std::string streamed;
  // the reference holds BOS followed by the 64 greedy ids
  REQUIRE(want.size() == 65);
  auto results = infer::generate(fx().model, fx().tokenizer, {greedy({1}, 64)},
                                 [&](size_t, const std::string& t) { streamed += t; });
  const auto& r = results.front();
  CHECK(std::vector<int32_t>(want.begin() + 1, want.end()) == r.tokens);
  CHECK(r.finish_reason == "length");
  CHECK(streamed == r.text);
  CHECK(r.text == fx().tokenizer.decode(r.tokens));
  CHECK(r.text.rfind("Once upon a time, there was a little girl named Lily.", 0) == 0);
}

TEST_CASE("a batch of requests gives each request's own result", "[infer]") {
  auto want = reference_ids();
  auto a = greedy({1}, 30);
  auto b = greedy({want.begin(), want.begin() + 12}, 20);
  auto c = greedy({1, 403}, 5);
  auto alone_b = infer::generate(fx().model, fx().tokenizer, {b}).front();
  auto batch = infer::generate(fx().model, fx().tokenizer, {a, b, c});
  CHECK(batch[0].tokens == std::vector<int32_t>(want.begin() + 1, want.begin() + 31));
  CHECK(batch[1].tokens == alone_b.tokens);
  CHECK(batch[2].tokens.size() == 5);
  CHECK(batch[2].tokens.front() == want[2]);
}

TEST_CASE("a prompt prefilled in chunks continues as the reference, each row as alone", "[infer]") {
  // Prompts of 41 and 23 reference ids (BOS and greedy continuations) prefilled 7 positions per forward: each row's
  // logits after its prompt pick the reference's next id and equal one forward over the whole prompt (the CPU
  // attention gives a query the same keys whatever chunk it came in; sums may differ in the last bits).
  const auto want = reference_ids();
  auto a = greedy({want.begin(), want.begin() + 41}, 4), b = greedy({want.begin(), want.begin() + 23}, 4);
  infer::Sequence sa(a, fx().tokenizer, 512), sb(b, fx().tokenizer, 512), whole_a(a, fx().tokenizer, 512);
  c10::InferenceMode guard;
  auto cache = fx().model.cache_new(2, 64);
  auto chunked = infer::prefill_prompts(fx().model, cache, {&sa, &sb}, 7);
  CHECK(sa.prefilled() == 41);
  CHECK(sb.prefilled() == 23);
  REQUIRE(chunked.sizes() == torch::IntArrayRef({2, fx().model.config().vocab_size}));
  CHECK(chunked[0].argmax().item<int64_t>() == want[41]);
  CHECK(chunked[1].argmax().item<int64_t>() == want[23]);
  auto one_cache = fx().model.cache_new(1, 64);
  const auto whole = infer::prefill_prompts(fx().model, one_cache, {&whole_a}, 512);
  CHECK(torch::allclose(chunked[0], whole[0], 1e-4, 1e-4));
  // Decoding on from the chunked cache follows the reference too.
  infer::sample_rows({&sa, &sb}, chunked, nullptr);
  infer::decode_step(fx().model, cache, {&sa, &sb}, nullptr);
  CHECK(sa.generated() == std::vector<int32_t>(want.begin() + 41, want.begin() + 43));
  CHECK(sb.generated() == std::vector<int32_t>(want.begin() + 23, want.begin() + 25));
}

TEST_CASE("stop strings end generation before the string", "[infer]") {
  auto r = greedy({1}, 63);
  r.stop = {" Lily"};
  auto out = infer::generate(fx().model, fx().tokenizer, {r}).front();
  CHECK(out.finish_reason == "stop");
  CHECK(out.text == "Once upon a time, there was a little girl named");
}

TEST_CASE("a stop token ends generation and is not part of the output", "[infer]") {
  auto want = reference_ids();
  auto r = greedy({1}, 63);
  r.stop_token_ids = {want[5]};  // pretend the 5th generated id is an EOS
  auto out = infer::generate(fx().model, fx().tokenizer, {r}).front();
  CHECK(out.finish_reason == "stop");
  CHECK(out.tokens == std::vector<int32_t>(want.begin() + 1, want.begin() + 5));
}

TEST_CASE("seeded sampling is reproducible through generate", "[infer]") {
  auto r = greedy({1}, 20);
  r.sampling = infer::SamplingParams();
  r.sampling.seed = 7;
  auto x = infer::generate(fx().model, fx().tokenizer, {r}).front();
  auto y = infer::generate(fx().model, fx().tokenizer, {r}).front();
  CHECK(x.tokens == y.tokens);
  r.sampling.temperature = 1.5f;
  r.sampling.top_k = 0;
  r.sampling.min_p = 0;
  r.sampling.top_p = 1;
  r.sampling.seed = 8;
  auto z = infer::generate(fx().model, fx().tokenizer, {r}).front();
  CHECK(z.tokens != x.tokens);
}

TEST_CASE("a prompt longer than the context is a ConfigError", "[infer]") {
  auto r = greedy(std::vector<int32_t>(600, 5), 5);
  CHECK_THROWS_AS(infer::generate(fx().model, fx().tokenizer, {r}), ConfigError);
}
