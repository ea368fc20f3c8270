#include "serve/completion.h"

namespace hearth::serve {

void Completion::append(size_t choice, const std::string& text, size_t tokens,
                        std::vector<infer::TokenLogprob> logprobs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!text.empty() || !logprobs.empty()) choices_[choice].pieces.push_back({text, std::move(logprobs)});
    choices_[choice].tokens += tokens;
    if (tokens > 0 && !first_token_) first_token_ = std::chrono::steady_clock::now();
  }
  cv_.notify_all();
}

void Completion::finish(size_t choice, const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (choices_[choice].finished) return;
    choices_[choice].finished = true;
    choices_[choice].reason = reason;
  }
  cv_.notify_all();
}

void Completion::fail(const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.empty()) error_ = message;
    for (auto& c : choices_)
      if (!c.finished) {
        c.finished = true;
        c.reason = "error";
      }
  }
  cv_.notify_all();
}

std::vector<ChoiceUpdate> Completion::take(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  auto news = [&] {
    for (const auto& c : choices_)
      if (!c.pieces.empty() || (c.finished && !c.reported)) return true;
    return false;
  };
  cv_.wait_for(lock, timeout, news);
  std::vector<ChoiceUpdate> out;
  for (size_t i = 0; i < choices_.size(); ++i) {
    auto& c = choices_[i];
    for (; !c.pieces.empty(); c.pieces.pop_front()) {
      ChoiceUpdate u;
      u.index = i;
      u.text.swap(c.pieces.front().text);
      u.logprobs.swap(c.pieces.front().logprobs);
      out.push_back(std::move(u));
    }
    if (!c.finished || c.reported) continue;
    if (out.empty() || out.back().index != i) out.push_back(ChoiceUpdate{i, {}, {}, false, {}});
    out.back().finished = true;
    out.back().finish_reason = c.reason;
    c.reported = true;
  }
  return out;
}

bool Completion::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& c : choices_)
    if (!c.reported || !c.pieces.empty()) return false;
  return true;
}

std::string Completion::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

size_t Completion::completion_tokens() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& c : choices_) n += c.tokens;
  return n;
}

std::optional<std::chrono::steady_clock::time_point> Completion::first_token() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_token_;
}

}  // namespace hearth::serve
