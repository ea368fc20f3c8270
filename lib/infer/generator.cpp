#include "infer/generator.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "core/error.h"
#include "core/signals.h"

namespace hearth::infer {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

std::vector<GenerationResult> generate(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                                       const std::vector<GenerationRequest>& requests, const TextCallback& on_text,
                                       GenerationStats* stats, int64_t ctx_limit) {
  if (requests.empty()) return {};
  const int64_t model_ctx = model.config().max_position_embeddings;
  const int64_t ctx = ctx_limit > 0 ? std::min(ctx_limit, model_ctx) : model_ctx;
  std::vector<Sequence> seqs;
  seqs.reserve(requests.size());
  int64_t capacity = 1;
  for (const auto& r : requests) {
    if (r.prompt.empty()) throw ConfigError("generate: prompt is empty; expected at least one token");
    if (static_cast<int64_t>(r.prompt.size()) >= ctx)
      throw ConfigError(
          fmt::format("generate: prompt is {} tokens; the context is {} tokens{}", r.prompt.size(), ctx,
                      ctx < model_ctx ? " (--ctx-size)" : " (the model's)"));
    r.sampling.validate();
    seqs.emplace_back(r, tokenizer, ctx);
    capacity = std::max<int64_t>(capacity, static_cast<int64_t>(r.prompt.size()) + seqs.back().budget());
  }
  std::vector<Sequence*> rows;
  for (auto& s : seqs) rows.push_back(&s);
  std::vector<GenerationResult> results(seqs.size());
  GenerationStats local;
  auto on_token = [&](size_t row, const TokenEvent& event) {
    ++local.decode_tokens;
    results[row].text += event.text;
    if (on_text && !event.text.empty()) on_text(row, event.text);
  };

  c10::InferenceMode guard;
  auto cache = model.cache_new(static_cast<int64_t>(seqs.size()), capacity);
  // Prefill: every prompt together, right-padded to the longest, in chunks of kPrefillChunk positions.
  auto t0 = std::chrono::steady_clock::now();
  auto logits = prefill_prompts(model, cache, rows);
  local.prefill_seconds = seconds_since(t0);
  for (size_t b = 0; b < seqs.size(); ++b) {
    local.prefill_tokens += requests[b].prompt.size();
    if (seqs[b].budget() == 0) results[b].text += seqs[b].finish("length");  // nothing decoded or held back
  }
  // Decode: the first token from the prefill's logits, then one step per token.
  auto t1 = std::chrono::steady_clock::now();
  sample_rows(rows, logits, on_token);
  while (std::any_of(seqs.begin(), seqs.end(), [](const Sequence& s) { return !s.finished(); })) {
    interrupt_check("generate");
    decode_step(model, cache, rows, on_token);
  }
  local.decode_seconds = seconds_since(t1);
  if (stats) *stats = local;
  for (size_t b = 0; b < seqs.size(); ++b) {
    results[b].tokens = seqs[b].generated();
    results[b].finish_reason = seqs[b].finish_reason();
    results[b].prompt_tokens = requests[b].prompt.size();
  }
  return results;
}

void vocab_check(const tokenizer::Tokenizer& tokenizer, const model::ModelConfig& config, const std::string& origin) {
  const auto ids = static_cast<int64_t>(tokenizer.vocab_size());
  if (ids <= config.vocab_size) return;
  const auto last = tokenizer.id_to_token(static_cast<tokenizer::TokenId>(ids - 1));
  throw FormatError(fmt::format(
      "{}: the tokenizer has ids up to {} (e.g. '{}') but the model's vocab_size is {}: those tokens have no "
      "embedding row; expected a tokenizer made for this model",
      origin, ids - 1, last ? *last : std::string("?"), config.vocab_size));
}

}  // namespace hearth::infer
