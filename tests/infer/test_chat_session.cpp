// ChatSession on the stories260K model: a reply is generate() on the chat prompt, history is trimmed to fit,
// a stopped reply is kept and marked, a failed one leaves the conversation as it was, adapters switch.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "chat/prompt.h"
#include "core/error.h"
#include "infer/chat_session.h"
#include "infer/generator.h"
#include "test_paths.h"

using namespace hearth;
namespace fs = std::filesystem;

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

infer::ChatSession greedy_session(int max_tokens) {
  infer::ChatSessionOptions o;
  o.max_tokens = max_tokens;
  o.sampling.temperature = 0;
  return infer::ChatSession(fx().model, fx().tokenizer, o);
}

// infer::generate on the chat prompt of `messages`, greedy, as `hearth generate --chat` runs it.
infer::GenerationResult generate_chat(const nlohmann::ordered_json& messages, int max_tokens) {
  infer::GenerationRequest r;
  chat::ChatPromptOptions o;
  o.add_generation_prompt = true;
  r.prompt = chat::chat_prompt_encode(fx().tokenizer, messages, o).ids;
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0;
  r.stop = chat::chat_stop_strings(fx().tokenizer);
  r.stop_token_ids = infer::stop_ids_default(fx().model, fx().tokenizer);
  return infer::generate(fx().model, fx().tokenizer, {r}).front();
}

nlohmann::ordered_json user(const std::string& text) {
  return nlohmann::ordered_json::array({{{"role", "user"}, {"content", text}}});
}

}  // namespace

TEST_CASE("a chat reply is generate() on the conversation's chat prompt, streamed as it goes", "[infer][chat]") {
  auto session = greedy_session(30);
  std::string streamed;
  infer::ChatReplyCallbacks cb;
  cb.on_text = [&streamed](const std::string& t) { streamed += t; };
  auto first = session.reply("Hello", cb);
  auto want = generate_chat(user("Hello"), 30);
  CHECK(first.tokens == want.tokens);
  CHECK(first.text == want.text);
  CHECK(streamed == first.text);
  CHECK(first.finish_reason == want.finish_reason);
  CHECK(first.dropped.turns == 0);
  // The second reply sees the first turn.
  auto second = session.reply("Tell me more");
  auto history = session.conversation().messages();
  REQUIRE(history.size() == 4);
  history.erase(history.size() - 1);  // the conversation before the second reply
  CHECK(second.tokens == generate_chat(history, 30).tokens);
  CHECK(second.prompt_tokens > first.prompt_tokens + first.tokens.size());
}

TEST_CASE("a chat trims the oldest turns to leave room for the reply", "[infer][chat]") {
  auto session = greedy_session(400);  // room kept: min(400, 512 / 2) = 256 tokens
  session.conversation().system_set("You tell stories.");
  auto first = session.reply("Hello");
  REQUIRE(first.tokens.size() == 400);
  chat::TrimResult seen;
  infer::ChatReplyCallbacks cb;
  cb.on_trim = [&seen](const chat::TrimResult& t) { seen = t; };
  auto second = session.reply("Once upon a time", cb);
  CHECK(second.dropped.turns == 1);
  CHECK(second.dropped.messages == 2);
  CHECK(seen.turns == 1);
  const auto& c = session.conversation();
  CHECK(c.system() == "You tell stories.");
  REQUIRE(c.turns().size() == 2);
  CHECK(c.turns()[0].content == "Once upon a time");
  CHECK(second.prompt_tokens + 256 <= 512);
}

TEST_CASE("a stopped chat reply is kept and marked, an abandoned or too long one leaves no trace", "[infer][chat]") {
  auto session = greedy_session(100);
  int tokens = 0;
  infer::ChatReplyCallbacks cb;
  cb.stop_requested = [&tokens] { return ++tokens > 5; };
  auto stopped = session.reply("Hello", cb);
  CHECK(stopped.finish_reason == "interrupted");
  CHECK(stopped.tokens.size() == 5);
  CHECK(stopped.text == generate_chat(user("Hello"), 5).text);
  REQUIRE(session.conversation().turns().size() == 2);
  CHECK(session.conversation().turns()[1].interrupted);
  CHECK(session.conversation().turns()[1].content == stopped.text);

  cb.stop_requested = []() -> bool { throw InterruptedError("chat: interrupted by signal"); };
  CHECK_THROWS_AS(session.reply("Go on", cb), InterruptedError);
  CHECK(session.conversation().turns().size() == 2);
  CHECK_THROWS_AS(session.reply(std::string(2000, 'x')), ConfigError);  // alone more than the context
  CHECK(session.conversation().turns().size() == 2);
}

TEST_CASE("a chat switches LoRA adapters by path, by name and back to the base model", "[infer][chat]") {
  const fs::path dir = fs::temp_directory_path() / ("hearth_test_chat_session_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  model::LoraConfig lc;
  lc.r = 4;
  auto adapter = model::LoraAdapter::create(fx().model.config(), lc, 3);
  torch::manual_seed(5);
  for (auto& p : adapter.parameters()) p.copy_(torch::randn(p.sizes()) * 0.5);
  adapter.save(dir / "storyteller");

  auto session = greedy_session(20);
  auto base = session.reply("Hello").tokens;
  CHECK(session.adapter_use((dir / "storyteller").string()) == "storyteller");
  session.conversation().turns_clear();
  auto tuned = session.reply("Hello").tokens;
  CHECK(tuned != base);
  CHECK_THROWS_AS(session.adapter_use((dir / "missing").string()), IoError);
  CHECK(session.adapter_name() == "storyteller");  // a failed load keeps the adapter in use
  CHECK(session.adapter_use("none").empty());
  session.conversation().turns_clear();
  CHECK(session.reply("Hello").tokens == base);
  CHECK(session.adapter_use("storyteller") == "storyteller");  // by name: the one loaded before
  session.conversation().turns_clear();
  CHECK(session.reply("Hello").tokens == tuned);
  CHECK_THAT(session.adapters_describe(), Catch::Contains("* storyteller"));
  fs::remove_all(dir);
}
