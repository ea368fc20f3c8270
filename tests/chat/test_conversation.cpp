// hearth chat's conversations: trimming to a context (oldest turns first, never the system message), the JSON
// file (/save -> /load), its validation; and the prompt's commands.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "chat/chat_command.h"
#include "chat/conversation.h"
#include "core/error.h"
#include "io/atomic_file.h"

using hearth::chat::chat_command_parse;
using hearth::chat::ChatCommandKind;
using hearth::chat::Conversation;
using ojson = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

// A conversation with a system message and `turns` answered turns ("u0"/"a0", "u1"/"a1", ...).
Conversation conversation_with(size_t turns, const std::string& system = "Be brief.") {
  Conversation c;
  c.system_set(system);
  for (size_t i = 0; i < turns; ++i) {
    c.user_add("u" + std::to_string(i));
    c.assistant_add("a" + std::to_string(i));
  }
  return c;
}

std::vector<std::string> contents(const ojson& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m["role"].get<std::string>() + ":" + m["content"].get<std::string>());
  return out;
}

// `fits` for trim(): at most `n` messages.
auto at_most(size_t n) {
  return [n](const ojson& messages) { return messages.size() <= n; };
}

fs::path scratch_dir() {
  auto dir = fs::temp_directory_path() / ("hearth_test_conversation_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("trim drops the oldest turns and keeps the system message", "[chat]") {
  Conversation c = conversation_with(3);
  c.user_add("u3");
  REQUIRE(c.messages().size() == 8);  // system, 3 answered turns, the new message
  auto r = c.trim(at_most(5));
  CHECK(r.fits);
  CHECK(r.turns == 2);
  CHECK(r.messages == 4);
  CHECK(contents(c.messages()) == std::vector<std::string>{"system:Be brief.", "user:u2", "assistant:a2", "user:u3"});
}

TEST_CASE("trim leaves a conversation that fits untouched and calls fits once", "[chat]") {
  Conversation c = conversation_with(2);
  c.user_add("u2");
  int calls = 0;
  auto r = c.trim([&calls](const ojson&) {
    ++calls;
    return true;
  });
  CHECK(calls == 1);
  CHECK(r.turns == 0);
  CHECK(r.messages == 0);
  CHECK(r.fits);
  CHECK(c.messages().size() == 6);
}

TEST_CASE("trim never drops the system message or the newest user message", "[chat]") {
  Conversation c = conversation_with(2);
  c.user_add("a long message");
  auto r = c.trim(at_most(1));  // nothing but the system message would fit
  CHECK_FALSE(r.fits);
  CHECK(r.turns == 2);
  CHECK(r.messages == 4);
  CHECK(contents(c.messages()) == std::vector<std::string>{"system:Be brief.", "user:a long message"});
  // Without a system message the newest user message is all that stays.
  Conversation bare = conversation_with(1, "");
  bare.user_add("next");
  CHECK(bare.trim(at_most(1)).turns == 1);
  CHECK(contents(bare.messages()) == std::vector<std::string>{"user:next"});
}

TEST_CASE("trim drops an interrupted reply with its turn", "[chat]") {
  Conversation c;
  c.user_add("u0");
  c.assistant_add("half a rep", /*interrupted=*/true);
  c.user_add("u1");
  auto r = c.trim(at_most(1));
  CHECK(r.fits);
  CHECK(r.turns == 1);
  CHECK(r.messages == 2);
  REQUIRE(c.turns().size() == 1);
  CHECK(c.turns()[0].content == "u1");
}

TEST_CASE("turns alternate: a second user message or a reply without one is refused", "[chat]") {
  Conversation c;
  CHECK_THROWS_AS(c.assistant_add("hi"), hearth::Error);
  c.user_add("u0");
  CHECK_THROWS_AS(c.user_add("u1"), hearth::Error);
  c.pending_user_drop();
  CHECK(c.turns().empty());
  c.user_add("u0");
  c.assistant_add("a0");
  c.pending_user_drop();  // the last message is a reply: nothing to drop
  CHECK(c.turns().size() == 2);
  c.turns_clear();
  CHECK(c.turns().empty());
}

TEST_CASE("save then load gives the same conversation, interrupted replies marked", "[chat]") {
  Conversation c = conversation_with(2, "You tell stories.\nShort ones.");
  c.user_add("Tell me about \"quotes\" and ünïcödé");
  c.assistant_add("Once upon", /*interrupted=*/true);
  const auto path = scratch_dir() / "saved.json";
  hearth::chat::conversation_save(c, path);
  auto j = nlohmann::json::parse(hearth::io::file_read(path));
  REQUIRE(j.is_array());
  CHECK(j.size() == 7);
  CHECK(j[0]["role"] == "system");
  CHECK(j[6]["interrupted"] == true);
  CHECK_FALSE(j[5].contains("interrupted"));

  Conversation back = hearth::chat::conversation_load(path);
  CHECK(back.system() == c.system());
  CHECK(back.messages() == c.messages());
  CHECK(back.to_json() == c.to_json());
  REQUIRE(back.turns().size() == 6);
  CHECK(back.turns()[5].interrupted);
  CHECK_FALSE(back.turns()[3].interrupted);
  // A loaded conversation goes on: the next message is a user turn.
  back.user_add("more");
  CHECK(back.messages().size() == 8);
}

TEST_CASE("load refuses malformed conversation files with a message naming the problem", "[chat]") {
  const auto dir = scratch_dir();
  auto load_error = [&dir](const std::string& text) -> std::string {
    hearth::io::atomic_write(dir / "bad.json", text);
    try {
      hearth::chat::conversation_load(dir / "bad.json");
    } catch (const hearth::FormatError& e) {
      return e.what();
    }
    return "(loaded)";
  };
  CHECK_THAT(load_error("{not json"), Catch::Contains("bad.json"));
  CHECK_THAT(load_error("42"), Catch::Contains("expected an array of messages"));
  CHECK_THAT(load_error(R"([{"role": "user"}])"), Catch::Contains("messages[0]: expected a string 'content'"));
  CHECK_THAT(load_error(R"([{"role": "user", "content": 5}])"), Catch::Contains("'content', got number"));
  CHECK_THAT(load_error(R"([{"role": "user", "content": "x"}, {"role": "user", "content": "y"}])"),
             Catch::Contains("messages[1]: role 'user'; expected 'assistant'"));
  CHECK_THAT(load_error(R"([{"role": "user", "content": "x"}, {"role": "system", "content": "y"}])"),
             Catch::Contains("messages[1]: role 'system'"));
  CHECK_THAT(load_error(R"([{"role": "tool", "content": "x"}])"), Catch::Contains("role 'tool'; expected 'user'"));
  CHECK_THAT(load_error(R"([{"role": "user", "content": "x", "name": "me"}])"), Catch::Contains("unknown key 'name'"));
  CHECK_THAT(load_error(R"([{"role": "user", "content": "x", "interrupted": true}])"),
             Catch::Contains("'interrupted' is a boolean on an assistant message"));
  CHECK_THROWS_AS(hearth::chat::conversation_load(dir / "missing.json"), hearth::IoError);
  // The object form `hearth chat-template --messages` reads is accepted too, and an empty conversation.
  CHECK(load_error(R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]})") ==
        "(loaded)");
  CHECK(load_error("[]") == "(loaded)");
}

TEST_CASE("chat commands: names, arguments, messages that start with a slash", "[chat]") {
  auto save = chat_command_parse("/save  my chat.json ");
  REQUIRE(save);
  CHECK(save->kind == ChatCommandKind::kSave);
  CHECK(save->arg == "my chat.json");
  auto system = chat_command_parse("/system You are terse.");
  REQUIRE(system);
  CHECK(system->kind == ChatCommandKind::kSystem);
  CHECK(system->arg == "You are terse.");
  CHECK(chat_command_parse("/exit")->kind == ChatCommandKind::kExit);
  CHECK(chat_command_parse("/reset")->arg.empty());
  auto unknown = chat_command_parse("/quit now");
  REQUIRE(unknown);
  CHECK(unknown->kind == ChatCommandKind::kUnknown);
  CHECK(unknown->name == "/quit");
  CHECK_FALSE(chat_command_parse("hello /save x"));
  CHECK_FALSE(chat_command_parse("//etc/hosts is a file"));  // a message: the caller drops one slash
  CHECK_FALSE(chat_command_parse(""));
  for (const char* name : {"/help", "/reset", "/system", "/adapter", "/save", "/load", "/exit"}) {
    CHECK_THAT(hearth::chat::chat_command_names(), Catch::Contains(name));
    CHECK_THAT(hearth::chat::chat_command_help(), Catch::Contains(name));
  }
}
