#include "serve/echo.h"

#include <torch/torch.h>

#include "serve/serve_state.h"

namespace hearth::serve {
namespace {

constexpr int64_t kRowsPerCopy = 256;  // logits rows brought to the CPU at a time (bounds the copy's memory)

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;  // UTF-8 lead bytes
  return n;
}

// A token's text after `prev` (infer::Sequence reads generated tokens the same way): decode({prev, t}) minus
// decode({prev}), or decode({t}) for the first token or when that is not an extension.
std::string token_text(const tokenizer::Tokenizer& tok, const infer::TokenId* prev, infer::TokenId t) {
  if (!prev) return tok.decode({t});
  const std::string before = tok.decode({*prev});
  const std::string both = tok.decode({*prev, t});
  if (both.compare(0, before.size(), before) == 0) return both.substr(before.size());
  return tok.decode({t});
}

}  // namespace

EchoPrefix echo_prefix(const model::CausalLM& model, const tokenizer::Tokenizer& tokenizer,
                       const std::vector<infer::TokenId>& ids, const std::string* text,
                       const model::LoraAdapter* adapter, int logprobs) {
  EchoPrefix out;
  out.text = text ? *text : tokenizer.decode(ids, /*skip_special_tokens=*/true);
  out.chars = code_points(out.text);
  if (logprobs < 0) return out;
  c10::InferenceMode guard;
  auto logits = prompt_forward(model, ids, adapter, /*hidden_states=*/false);  // [T, V]: row i predicts token i + 1
  const int64_t T = logits.size(0), V = logits.size(1);
  out.logprobs.resize(ids.size());
  out.logprobs[0].chosen = {ids[0], 0.0f, token_text(tokenizer, nullptr, ids[0]), {}};
  out.logprobs[0].scored = false;
  for (int64_t from = 0; from + 1 < T; from += kRowsPerCopy) {
    const int64_t n = std::min(kRowsPerCopy, T - 1 - from);
    auto rows = logits.narrow(0, from, n).to(torch::kCPU, torch::kFloat32).contiguous();  // [n, V]
    const float* data = rows.data_ptr<float>();
    for (int64_t r = 0; r < n; ++r) {
      const size_t i = static_cast<size_t>(from + r + 1);
      auto& e = out.logprobs[i];
      e = infer::token_logprob(data + r * V, static_cast<size_t>(V), ids[i], logprobs);
      e.chosen.text = token_text(tokenizer, &ids[i - 1], ids[i]);
      for (auto& a : e.top) a.text = token_text(tokenizer, &ids[i - 1], a.token);
    }
  }
  // text_offset: where each token's text starts in the prompt decoded without special tokens.
  tokenizer::StreamDecoder decoder(tokenizer, /*skip_special_tokens=*/true);
  size_t at = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    out.logprobs[i].text_offset = std::min(at, out.chars);  // a prompt that does not decode back to `text`
    at += code_points(decoder.push(ids[i]));
  }
  return out;
}

}  // namespace hearth::serve
