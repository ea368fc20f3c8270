// Constrained-decoding cost: how long finding the allowed tokens takes per generated token, on real
// vocabularies (Llama 3's 128k, Qwen3's 151k, both from the test assets; stories260K's 512), along the
// tokenization of JSON documents that follow a schema. Prints a table (bench/README.md); asserts nothing.
//
//   build/bench/bench_constrain [--decode-ms 27.2] [--repeat 3]
// --decode-ms: one decode step of the model the share is taken of (default: the SmolLM2-135M shape, float32,
// 2 threads, from bench_generate's table).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "constrain/constraint.h"
#include "constrain/json_schema.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;
using Clock = std::chrono::steady_clock;

namespace {

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

const char* kSchema = R"({"type":"object","properties":{
  "title":{"type":"string"},"year":{"type":"integer"},"rating":{"type":"number"},
  "tags":{"type":"array","items":{"type":"string"},"maxItems":8},
  "author":{"type":"object","properties":{"name":{"type":"string"},"email":{"anyOf":[{"type":"string"},{"type":"null"}]}},
            "required":["name","email"],"additionalProperties":false},
  "summary":{"type":"string"}},
  "required":["title","year","rating","tags","author","summary"],"additionalProperties":false})";

const char* kDocument = R"({"title": "The Left Hand of Darkness", "year": 1969, "rating": 4.5,
  "tags": ["science fiction", "anthropology", "winter", "gender", "politics"],
  "author": {"name": "Ursula K. Le Guin", "email": null},
  "summary": "An envoy from the Ekumen travels to the planet Gethen, whose people have no fixed sex, and must win the trust of two rival nations while crossing a glacier with the one person who believed him. Written in 1969, it won both the Hugo and the Nebula awards; its reports, myths and journal entries interleave."})";

struct Row {
  std::string vocab;
  size_t size = 0;
  double trie_ms = 0, fit_ms = 0;
  std::vector<double> step_ms;
};

Row measure(const std::string& name, const std::filesystem::path& dir, int repeat) {
  Row row;
  row.vocab = name;
  const auto tok = tokenizer::Tokenizer::load(dir);
  row.size = tok.vocab_size();
  auto t = Clock::now();
  auto trie = std::make_shared<const constrain::TokenTrie>(tok.token_bytes_all());
  row.trie_ms = ms_since(t);
  const auto grammar = constrain::json_schema_grammar(nlohmann::ordered_json::parse(kSchema));
  t = Clock::now();
  auto tg = std::make_shared<const constrain::TokenGrammar>(grammar, trie, std::vector<int32_t>{*tok.eos_id()});
  row.fit_ms = ms_since(t);
  const auto ids = tok.encode(kDocument, {false, false});
  for (int r = 0; r < repeat; ++r) {
    constrain::TokenConstraint c(tg);
    std::vector<float> logits(tok.vocab_size(), 0.0f);
    for (int32_t id : ids) {
      t = Clock::now();
      c.mask_logits(logits.data(), logits.size());
      row.step_ms.push_back(ms_since(t));
      c.accept(id);
    }
  }
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"constrained decoding cost per token"};
  double decode_ms = 27.2;
  int repeat = 3;
  app.add_option("--decode-ms", decode_ms, "Decode step the share is taken of (ms)");
  app.add_option("--repeat", repeat, "Passes over the document");
  CLI11_PARSE(app, argc, argv);
  const std::filesystem::path assets = HEARTH_TEST_ASSETS_DIR;
  std::vector<Row> rows;
  rows.push_back(measure("stories260K", std::filesystem::path(HEARTH_SOURCE_DIR) / "models" / "stories260K", repeat));
  rows.push_back(measure("Llama 3", assets / "llama3", repeat));
  rows.push_back(measure("Qwen3", assets / "qwen3", repeat));
  fmt::print("| vocabulary | tokens | trie build ms | grammar setup ms | mask ms mean | p50 | p99 | max | "
             "share of a {:.1f} ms decode step |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
             decode_ms);
  for (auto& r : rows) {
    std::sort(r.step_ms.begin(), r.step_ms.end());
    const double mean = std::accumulate(r.step_ms.begin(), r.step_ms.end(), 0.0) / r.step_ms.size();
    auto pct = [&](double p) { return r.step_ms[std::min(r.step_ms.size() - 1, size_t(p * r.step_ms.size()))]; };
    fmt::print("| {} | {} | {:.0f} | {:.1f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.1f}% |\n", r.vocab, r.size,
               r.trie_ms, r.fit_ms, mean, pct(0.5), pct(0.99), r.step_ms.back(), 100 * mean / decode_ms);
  }
  return 0;
}
