// One HTTP request's generations as they arrive: the hand-over point between the scheduler thread, which
// appends text, and the HTTP handler thread, which takes it and streams or collects it.
//
// A completion has n choices (OpenAI `n`, or several prompts); each ends with a finish reason ("stop",
// "length") or the whole completion fails with an error message. Cancelling it (client gone, shutdown)
// tells the scheduler to drop its sequences and free their KV-cache rows.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "infer/sampler.h"

namespace hearth::serve {

// One piece a choice produced: the text of one token event (what it completed) — streamed as one chunk, as
// llama.cpp's server and Ollama send one per token, however far the reader is behind.
struct ChoiceUpdate {
  size_t index = 0;
  std::string text;
  std::vector<infer::TokenLogprob> logprobs;  // of the tokens whose text this update completes (if asked for)
  bool finished = false;
  std::string finish_reason;  // set when finished
};

class Completion {
 public:
  explicit Completion(size_t choices) : choices_(choices), start_(std::chrono::steady_clock::now()) {}

  // --- scheduler side ---
  // `logprobs`: those of the tokens `text` completes (infer::TokenEvent::logprobs).
  void append(size_t choice, const std::string& text, size_t tokens, std::vector<infer::TokenLogprob> logprobs = {});
  void finish(size_t choice, const std::string& reason);
  // Ends every unfinished choice with an error; take() then reports error().
  void fail(const std::string& message);

  // --- handler side ---
  // Waits up to `timeout` for news; returns the updates (empty on timeout): every piece appended since the last
  // call, in order, one per append() that carried text or logprobs; a choice's last update of the call carries
  // `finished` once it finished (an update with no text when no piece was left). After all choices finished and
  // were reported, returns at once with nothing.
  std::vector<ChoiceUpdate> take(std::chrono::milliseconds timeout);
  bool done() const;                 // every choice finished (or failed) and reported
  std::string error() const;         // non-empty after fail()
  size_t completion_tokens() const;  // over all choices
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }
  std::chrono::steady_clock::time_point start() const { return start_; }
  // When the first token of any choice was generated; std::nullopt before.
  std::optional<std::chrono::steady_clock::time_point> first_token() const;

 private:
  struct Piece {
    std::string text;
    std::vector<infer::TokenLogprob> logprobs;
  };
  struct Choice {
    std::deque<Piece> pieces;  // appended, not yet taken
    size_t tokens = 0;
    bool finished = false, reported = false;
    std::string reason;
  };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Choice> choices_;
  std::string error_;
  std::atomic<bool> cancelled_{false};
  std::chrono::steady_clock::time_point start_;
  std::optional<std::chrono::steady_clock::time_point> first_token_;
};

}  // namespace hearth::serve
