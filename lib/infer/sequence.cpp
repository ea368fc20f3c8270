#include "infer/sequence.h"

#include <algorithm>

namespace hearth::infer {

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

Sequence::Sequence(GenerationRequest request, const tokenizer::Tokenizer& tokenizer, int64_t ctx)
    : request_(std::move(request)),
      tokenizer_(&tokenizer),
      sampler_(request_.sampling),
      decoder_(tokenizer),
      stops_(request_.stop),
      context_(request_.prompt) {
  const int64_t left = ctx - static_cast<int64_t>(request_.prompt.size());
  budget_ = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(request_.max_tokens, left)));
  if (request_.grammar) constraint_.emplace(request_.grammar);
}

TokenId Sequence::sample(float* logits, size_t n) {
  std::vector<float> raw;  // the mask and the penalties change `logits` in place
  if (request_.logprobs >= 0) raw.assign(logits, logits + n);
  if (constraint_) constraint_->mask_logits(logits, n);
  const TokenId token = sampler_.sample(logits, n, context_, request_.prompt.size());
  if (request_.logprobs < 0) return token;
  sampled_ = token_logprob(raw.data(), n, token, request_.logprobs);
  auto describe = [this](TokenProb& t) {
    t.text = token_text(t.token);
    if (t.text.find("\xEF\xBF\xBD") != std::string::npos) t.bytes = tokenizer_->token_bytes(t.token).value_or("");
  };
  describe(sampled_->chosen);
  for (auto& t : sampled_->top) describe(t);
  return token;
}

// The text the output gives the token if it comes next: decode({t}) for the first generated token (the output
// is decoded from there, first-token rules such as a SentencePiece leading space dropped included), else
// decode({prev, t}) minus decode({prev}), prev the last generated token, as HF's DecodeStream does; decode({t})
// when that is not an extension.
std::string Sequence::token_text(TokenId token) const {
  if (generated_.empty()) return tokenizer_->decode({token});
  const std::string before = tokenizer_->decode({generated_.back()});
  const std::string both = tokenizer_->decode({generated_.back(), token});
  if (both.compare(0, before.size(), before) == 0) return both.substr(before.size());
  return tokenizer_->decode({token});
}

TokenEvent Sequence::accept(TokenId token) {
  TokenEvent event;
  if (finished_) return event;
  if (constraint_) constraint_->accept(token);
  const auto& stop_ids = request_.stop_token_ids;
  if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    sampled_.reset();  // a stop token is not reported, as its text is not
    event.text = finish("stop");
    emitted_bytes_ += event.text.size();
    logprobs_release(event);
    return event;
  }
  event.kept = true;
  context_.push_back(token);
  generated_.push_back(token);
  const std::string piece = decoder_.push(token);
  if (sampled_ && sampled_->chosen.token == token) {
    HeldLogprob h{std::move(*sampled_), decoded_bytes_, decoded_bytes_ + piece.size()};
    h.value.text_offset = decoded_chars_;
    held_.push_back(std::move(h));
  }
  sampled_.reset();
  decoded_bytes_ += piece.size();
  for (unsigned char c : piece) decoded_chars_ += (c & 0xC0) != 0x80;  // UTF-8 lead bytes
  event.text = stops_.push(piece);
  if (stops_.stopped()) event.text += finish("stop");
  else if (constraint_ && constraint_->must_stop()) event.text += finish("stop");
  else if (static_cast<int>(generated_.size()) >= budget_) event.text += finish("length");
  emitted_bytes_ += event.text.size();
  logprobs_release(event);
  return event;
}

// Reports the held tokens whose text is final: up to the last one with text that all went out. A token
// without text of its own (part of a character) goes out with the next one. When the sequence ended without
// a stop string everything went out; after a stop string, the tokens past the cut never do.
void Sequence::logprobs_release(TokenEvent& event) {
  size_t n = 0;
  if (finished_ && !stops_.stopped()) n = held_.size();
  else
    for (size_t i = 0; i < held_.size(); ++i)
      if (held_[i].end <= emitted_bytes_ && held_[i].end > held_[i].begin) n = i + 1;
  for (size_t i = 0; i < n; ++i) event.logprobs.push_back(std::move(held_[i].value));
  held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(n));
  if (finished_) held_.clear();
}

std::string Sequence::finish(const std::string& reason) {
  if (finished_) return {};
  finished_ = true;
  finish_reason_ = reason;
  return stops_.stopped() ? std::string() : stops_.push(decoder_.flush()) + stops_.flush();
}

StepInputs prefill_inputs(const std::vector<const Sequence*>& rows, const std::vector<int64_t>& count) {
  const int64_t B = static_cast<int64_t>(rows.size());
  const int64_t T = std::max<int64_t>(1, *std::max_element(count.begin(), count.end()));
  StepInputs in;
  in.tokens = torch::zeros({B, T}, torch::kInt64);
  in.positions = torch::zeros({B, T}, torch::kInt64);
  in.valid = torch::zeros({B, T}, torch::kBool);
  auto tok = in.tokens.accessor<int64_t, 2>();
  auto pos = in.positions.accessor<int64_t, 2>();
  auto val = in.valid.accessor<bool, 2>();
  bool any_adapter = false;
  for (int64_t b = 0; b < B; ++b) {
    const Sequence* s = rows[b];
    // Padding continues the row's positions (as the prompt's would), so RoPE tables stay in range.
    const int64_t start = s ? static_cast<int64_t>(s->prefilled()) : 0;
    for (int64_t t = 0; t < T; ++t) pos[b][t] = start + t;
    if (!s) continue;
    for (int64_t t = 0; t < count[b]; ++t) {
      tok[b][t] = static_cast<int64_t>(s->request().prompt[start + t]);
      val[b][t] = true;
    }
    any_adapter = any_adapter || s->request().adapter;
  }
  if (any_adapter)
    for (const auto* s : rows) in.adapters.push_back(s ? s->request().adapter : nullptr);
  return in;
}

StepInputs decode_inputs(const std::vector<const Sequence*>& rows) {
  const int64_t B = static_cast<int64_t>(rows.size());
  StepInputs in;
  in.tokens = torch::zeros({B, 1}, torch::kInt64);
  in.positions = torch::zeros({B, 1}, torch::kInt64);
  auto valid = torch::zeros({B, 1}, torch::kBool);
  auto tok = in.tokens.accessor<int64_t, 2>();
  auto pos = in.positions.accessor<int64_t, 2>();
  auto val = valid.accessor<bool, 2>();
  bool all_live = true, any_adapter = false;
  for (int64_t b = 0; b < B; ++b) {
    const Sequence* s = rows[b];
    if (!s || s->finished()) {
      all_live = false;
      continue;
    }
    tok[b][0] = static_cast<int64_t>(s->context().back());
    pos[b][0] = static_cast<int64_t>(s->context().size()) - 1;
    val[b][0] = true;
    any_adapter = any_adapter || s->request().adapter;
  }
  // With every row live, no mask is needed (the common single-sequence case).
  if (!all_live) in.valid = valid;
  if (any_adapter)
    for (const auto* s : rows) in.adapters.push_back(s && !s->finished() ? s->request().adapter : nullptr);
  return in;
}

torch::Tensor step_forward(const model::CausalLM& model, model::KvCache& cache, const StepInputs& in) {
  model::ForwardOptions o;
  o.last_only = true;
  o.adapters = in.adapters;
  o.cache_rows = in.cache_rows;
  auto logits = model.forward(in.tokens, in.positions, in.valid, &cache, o);  // [B, 1, V]
  return logits.select(1, 0).to(torch::kCPU).contiguous();
}

torch::Tensor prefill_prompts(const model::CausalLM& model, model::KvCache& cache, const std::vector<Sequence*>& rows,
                              int64_t chunk) {
  const std::vector<const Sequence*> in_rows(rows.begin(), rows.end());
  torch::Tensor out;
  for (;;) {
    std::vector<int64_t> count(rows.size());
    for (size_t b = 0; b < rows.size(); ++b)
      count[b] = std::min<int64_t>(chunk, static_cast<int64_t>(rows[b]->request().prompt.size() - rows[b]->prefilled()));
    if (std::all_of(count.begin(), count.end(), [](int64_t n) { return n == 0; })) break;
    auto logits = step_forward(model, cache, prefill_inputs(in_rows, count));
    if (!out.defined()) out = torch::empty_like(logits);
    for (size_t b = 0; b < rows.size(); ++b) {
      if (count[b] == 0) continue;
      rows[b]->prefill_advance(static_cast<size_t>(count[b]));
      if (rows[b]->prefilled() == rows[b]->request().prompt.size()) out[b].copy_(logits[b]);
    }
  }
  return out;
}

void sample_rows(const std::vector<Sequence*>& rows, torch::Tensor& logits, const TokenCallback& on_token,
                 const RowErrorCallback& on_error) {
  float* data = logits.data_ptr<float>();
  const int64_t V = logits.size(-1);
  for (size_t b = 0; b < rows.size(); ++b) {
    Sequence* s = rows[b];
    if (!s || s->finished()) continue;
    try {
      TokenId token = s->sample(data + static_cast<int64_t>(b) * V, static_cast<size_t>(V));
      TokenEvent event = s->accept(token);
      if (on_token) on_token(b, event);
    } catch (const std::exception& e) {
      if (!on_error) throw;
      on_error(b, e);
    }
  }
}

void decode_step(const model::CausalLM& model, model::KvCache& cache, const std::vector<Sequence*>& rows,
                 const TokenCallback& on_token) {
  auto logits = step_forward(model, cache, decode_inputs({rows.begin(), rows.end()}));
  sample_rows(rows, logits, on_token);
}

std::vector<TokenId> stop_ids_default(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer) {
  std::vector<TokenId> ids;
  for (int64_t id : model.config().eos_token_id) ids.push_back(static_cast<TokenId>(id));
  if (auto eos = tokenizer.eos_id(); eos && std::find(ids.begin(), ids.end(), *eos) == ids.end()) ids.push_back(*eos);
  return ids;
}

}  // namespace hearth::infer
