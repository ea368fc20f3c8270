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

// Per-row state of a batch.
struct Row {
  const GenerationRequest* request;
  Sampler sampler;
  tokenizer::StreamDecoder decoder;
  StopMatcher stops;
  std::vector<TokenId> context;  // prompt + generated
  GenerationResult result;
  int budget = 0;
  bool done = false;
};

void finish_row(Row& row, size_t index, const std::string& reason, const TextCallback& on_text) {
  if (row.done) return;
  row.done = true;
  row.result.finish_reason = reason;
  std::string tail = row.stops.stopped() ? std::string() : row.stops.push(row.decoder.flush()) + row.stops.flush();
  row.result.text += tail;
  if (on_text && !tail.empty()) on_text(index, tail);
}

// Records `token` for a row; finishes it on a stop token, a stop string or its budget.
void row_accept(Row& row, size_t index, TokenId token, const TextCallback& on_text) {
  const auto& stop_ids = row.request->stop_token_ids;
  if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    finish_row(row, index, "stop", on_text);
    return;
  }
  row.context.push_back(token);
  row.result.tokens.push_back(token);
  std::string safe = row.stops.push(row.decoder.push(token));
  row.result.text += safe;
  if (on_text && !safe.empty()) on_text(index, safe);
  if (row.stops.stopped())
    finish_row(row, index, "stop", on_text);
  else if (static_cast<int>(row.result.tokens.size()) >= row.budget)
    finish_row(row, index, "length", on_text);
}

}  // namespace

std::string StopMatcher::push(const std::string& text) {
  if (stopped_) return {};
  pending_ += text;
  size_t cut = std::string::npos;
  for (const auto& s : stops_) {
    if (s.empty()) continue;
    size_t at = pending_.find(s);
    if (at != std::string::npos) cut = std::min(cut, at);
  }
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const auto& s : stops_)
    for (size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len)
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::flush() {
  std::string out;
  out.swap(pending_);
  return stopped_ ? std::string() : out;
}

std::vector<TokenId> stop_ids_default(const model::LlamaModel& model, const tokenizer::Tokenizer& tokenizer) {
  std::vector<TokenId> ids;
  for (int64_t id : model.config().eos_token_id) ids.push_back(static_cast<TokenId>(id));
  if (auto eos = tokenizer.eos_id(); eos && std::find(ids.begin(), ids.end(), *eos) == ids.end()) ids.push_back(*eos);
  return ids;
}

std::vector<GenerationResult> generate(const model::LlamaModel& model, const tokenizer::Tokenizer& tokenizer,
                                       const std::vector<GenerationRequest>& requests, const TextCallback& on_text,
                                       GenerationStats* stats) {
  const int64_t B = static_cast<int64_t>(requests.size());
  if (B == 0) return {};
  const int64_t ctx = model.config().max_position_embeddings;
  std::vector<Row> rows;
  rows.reserve(B);
  int64_t max_prompt = 0, capacity = 0;
  for (const auto& r : requests) {
    if (r.prompt.empty()) throw ConfigError("generate: prompt is empty; expected at least one token");
    if (static_cast<int64_t>(r.prompt.size()) >= ctx)
      throw ConfigError(fmt::format("generate: prompt is {} tokens; the model's context is {} tokens", r.prompt.size(),
                                    ctx));
    r.sampling.validate();
    Row row{&r, Sampler(r.sampling), tokenizer::StreamDecoder(tokenizer), StopMatcher(r.stop), r.prompt, {}, 0, false};
    row.budget = static_cast<int>(std::min<int64_t>(std::max(r.max_tokens, 0), ctx - static_cast<int64_t>(r.prompt.size())));
    row.result.prompt_tokens = r.prompt.size();
    max_prompt = std::max<int64_t>(max_prompt, r.prompt.size());
    capacity = std::max<int64_t>(capacity, static_cast<int64_t>(r.prompt.size()) + row.budget);
    rows.push_back(std::move(row));
  }
  c10::InferenceMode guard;
  auto cache = model.cache_new(B, std::max<int64_t>(capacity, 1));
  model::ForwardOptions prefill_opts;
  bool any_adapter = false;
  for (const auto& r : requests) any_adapter = any_adapter || r.adapter;
  if (any_adapter)
    for (const auto& r : requests) prefill_opts.adapters.push_back(r.adapter);
  model::ForwardOptions step_opts = prefill_opts;
  prefill_opts.last_only = true;
  // Prefill: prompts right-padded to the longest.
  auto tokens = torch::zeros({B, max_prompt}, torch::kInt64);
  auto valid = torch::zeros({B, max_prompt}, torch::kBool);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = requests[b].prompt;
    for (size_t t = 0; t < p.size(); ++t) tokens[b][t] = static_cast<int64_t>(p[t]);
    valid[b].narrow(0, 0, static_cast<int64_t>(p.size())).fill_(true);
  }
  auto positions = torch::arange(max_prompt, torch::kInt64).unsqueeze(0).expand({B, max_prompt}).contiguous();
  auto t0 = std::chrono::steady_clock::now();
  auto logits = model.forward(tokens, positions, valid, &cache, prefill_opts).to(torch::kCPU).contiguous();
  GenerationStats local;
  local.prefill_seconds = seconds_since(t0);
  local.prefill_tokens = 0;
  for (const auto& r : requests) local.prefill_tokens += r.prompt.size();
  for (int64_t b = 0; b < B; ++b)
    if (rows[b].budget == 0) finish_row(rows[b], b, "length", on_text);

  auto t1 = std::chrono::steady_clock::now();
  auto next = torch::zeros({B, 1}, torch::kInt64);
  auto next_valid = torch::zeros({B, 1}, torch::kBool);
  auto next_pos = torch::zeros({B, 1}, torch::kInt64);
  while (true) {
    interrupt_check("generate");
    bool any = false;
    float* data = logits.data_ptr<float>();
    const int64_t V = logits.size(-1);
    for (int64_t b = 0; b < B; ++b) {
      Row& row = rows[b];
      if (row.done) {
        next_valid[b][0] = false;
        continue;
      }
      TokenId tok = row.sampler.sample(data + b * V, V, row.context, row.request->prompt.size());
      ++local.decode_tokens;
      row_accept(row, b, tok, on_text);
      next[b][0] = static_cast<int64_t>(tok);
      next_pos[b][0] = static_cast<int64_t>(row.context.size()) - 1;
      next_valid[b][0] = !row.done;
      any = any || !row.done;
    }
    if (!any) break;
    // With every row still generating, no mask is needed (the common single-request case).
    const bool all_active = next_valid.all().item<bool>();
    logits = model.forward(next, next_pos, all_active ? torch::Tensor() : next_valid, &cache, step_opts)
                 .to(torch::kCPU)
                 .contiguous();
  }
  local.decode_seconds = seconds_since(t1);
  if (stats) *stats = local;
  std::vector<GenerationResult> out;
  for (auto& row : rows) out.push_back(std::move(row.result));
  return out;
}

}  // namespace hearth::infer
