// Exports people download from their services: ChatGPT and Claude conversations.json, WhatsApp .txt, Telegram
// result.json, Obsidian/Logseq vaults. The samples in tests/data/fixtures/exports/ were written for hearth (no
// real person's data) in the shapes the services write, awkward cases included (ChatGPT's regenerated branch,
// hidden system and custom-instruction nodes, tool calls, image parts; Claude's thinking/tool blocks, the older
// text-only messages, an empty conversation; WhatsApp's Android and iOS headers, multi-line messages, media and
// system lines, U+200E and U+202F; Telegram's service messages, text entities, stickers, forwards). Each expected
// value below is read off the sample by hand.
#include <catch2/catch.hpp>

#include "data/chat_exports.h"
#include "data/extract.h"
#include "data/markdown.h"
#include "data/messenger.h"
#include "data/sources.h"
#include "data_test_util.h"
#include "io/atomic_file.h"

using namespace hearth;
using namespace hearth::data;

namespace {

std::string fixture(const std::string& name) { return io::file_read(test::data_fixtures() / "exports" / name); }

ExtractOptions me(std::vector<std::string> names, std::string chat_name = "") {
  ExtractOptions o;
  o.messenger.me = std::move(names);
  o.messenger.chat_name = std::move(chat_name);
  return o;
}

std::vector<std::pair<std::string, std::string>> turns(const Record& r) {
  std::vector<std::pair<std::string, std::string>> v;
  for (const auto& m : r.messages) v.emplace_back(m.role, m.content);
  return v;
}

using Turns = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("ChatGPT conversations.json: the current branch, text parts only, title and times", "[data][exports]") {
  auto ex = extract(fixture("chatgpt_conversations.json"), Format::kJson, {});
  CHECK(ex.format == "chatgpt");
  CHECK(ex.issues.empty());
  REQUIRE(ex.records.size() == 2);  // "New chat" holds only a hidden system node: left out
  const Record& r = ex.records[0];
  CHECK(r.kind == RecordKind::kChat);
  // The regenerated answer d2 (on the branch to current_node), not d1; the custom instructions, the hidden system
  // node, the code sent to python, its output and the empty assistant node are skipped; the image part is dropped.
  CHECK(turns(r) == Turns{{"user", "How often should I feed a rye starter?"},
                          {"assistant", "Twice a day at room temperature, once a day in a cool kitchen."},
                          {"user", "Here is my jar after 12 hours. Is the rise enough?"},
                          {"assistant", "It doubled, so it is ready: bake within the next 2 hours."}});
  CHECK(r.provenance.title == "Sourdough starter");
  CHECK(r.provenance.position == "conversation [0] 'Sourdough starter'");
  CHECK(r.provenance.created == "2024-05-01T10:00:00Z");  // 1714557600 s
  CHECK(r.provenance.updated == "2024-05-01T11:00:00Z");  // 1714561200 s
  CHECK(ex.records[1].provenance.position == "conversation [2] 'Packing list, Lisbon'");

  // Without current_node: the last child from the root. Consecutive turns of one role are merged.
  auto no_current = extract(R"([{"title": "t", "mapping": {
      "r": {"message": null, "parent": null, "children": ["u"]},
      "u": {"message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["q"]}}, "parent": "r", "children": ["a1", "a2"]},
      "a1": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["old"]}}, "parent": "u", "children": []},
      "a2": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["one"]}}, "parent": "u", "children": ["a3"]},
      "a3": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "text", "parts": ["two"]}}, "parent": "a2", "children": []}}}])",
                            Format::kJson, {});
  REQUIRE(no_current.records.size() == 1);
  CHECK(turns(no_current.records[0]) == Turns{{"user", "q"}, {"assistant", "one\n\ntwo"}});

  // Broken conversations are issues naming their position; the others still count.
  auto broken = extract(R"([{"title": "ok", "mapping": {"r": {"message": {"author": {"role": "user"}, "content":
      {"content_type": "text", "parts": ["hi"]}}, "parent": null, "children": []}}, "current_node": "r"},
      {"title": "bad", "mapping": "nope"},
      {"mapping": {"x": {"parent": "y"}}, "current_node": "x"},
      {"mapping": {"x": {"parent": "x"}}, "current_node": "x"}, 7])",
                        Format::kJson, {});
  CHECK(broken.records.size() == 1);
  REQUIRE(broken.issues.size() == 4);
  CHECK(broken.issues[0].reason == "conversation [1] 'bad': mapping: expected an object of message nodes, got string");
  CHECK(broken.issues[1].reason.find("conversation [2]: mapping: node 'y' is missing") == 0);
  CHECK(broken.issues[2].reason.find("is its own ancestor") != std::string::npos);
  CHECK(broken.issues[3].reason == "conversation [4]: expected a conversation object, got number");

  // --format chatgpt on something else: the whole file, said plainly.
  auto forced = extract(R"([{"text": "a note"}])", Format::kChatgpt, {});
  CHECK(forced.records.empty());
  CHECK(forced.skip_reason.find("not a ChatGPT export") == 0);
  // A plain JSON records file is still read as records.
  CHECK(extract(R"([{"text": "a note"}])", Format::kJson, {}).records.at(0).text == "a note");
}

TEST_CASE("Claude conversations.json: human/assistant text blocks, older text-only messages", "[data][exports]") {
  auto ex = extract(fixture("claude_conversations.json"), Format::kJson, {});
  CHECK(ex.format == "claude");
  CHECK(ex.issues.empty());
  REQUIRE(ex.records.size() == 2);  // the empty conversation is left out
  // Thinking, tool use and tool results are not text blocks; the attachment's extracted content is not read.
  CHECK(turns(ex.records[0]) ==
        Turns{{"user", "My balcony gets four hours of sun. Which tomatoes should I grow?"},
              {"assistant",
               "Cherry tomatoes such as 'Sungold' cope best with four hours of sun.\n\nUse a 20-litre pot "
               "per plant."},
              {"user", "Thanks! Here is my plan."},
              {"assistant", "The plan looks good; water in the morning."}});
  CHECK(ex.records[0].provenance.title == "Balcony tomatoes");
  CHECK(ex.records[0].provenance.created == "2024-05-02T08:15:00.123456Z");
  CHECK(turns(ex.records[1]) ==
        Turns{{"user", "What is a good name for a grey cat?"}, {"assistant", "Pebble, Smoke or Earl Grey."}});
  auto bad = extract(R"([{"name": "x", "chat_messages": [{"sender": "bot", "text": "hi"}]}])", Format::kClaude, {});
  REQUIRE(bad.issues.size() == 1);
  CHECK(bad.issues[0].reason == "conversation [0] 'x': chat_messages[0]: sender: expected human|assistant, got 'bot'");
}

TEST_CASE("WhatsApp Android export: --me is the assistant, multi-line messages, media and deleted dropped",
          "[data][exports]") {
  const std::string text = fixture("WhatsApp Chat with Sam Rivera.txt");
  CHECK(whatsapp_detect(text));
  CHECK(whatsapp_chat_name("WhatsApp Chat with Sam Rivera") == "Sam Rivera");
  auto ex = extract(text, Format::kTxt, me({"alex moreno"}, "Sam Rivera"));
  CHECK(ex.format == "whatsapp");
  CHECK(ex.issues.empty());
  CHECK(ex.omitted["media"] == 1);
  // 12/01 10:00..10:05, then 13/01 19:30 (a gap of more than 6 hours): two conversations.
  REQUIRE(ex.records.size() == 2);
  CHECK(turns(ex.records[0]) ==
        Turns{{"user", "Are we still on for the hike on Saturday?\nI can bring the map."},
              {"assistant", "Yes! Let's start at 8.\nBring water, it will be warm.\n\nAnd sunscreen.\nNice photo"}});
  CHECK(ex.records[0].line == 2);
  CHECK(ex.records[0].provenance.title == "Sam Rivera");
  CHECK(ex.records[0].provenance.created == "2024-01-12T10:00:00");  // day-first: 13/01 says so
  CHECK(ex.records[0].provenance.updated == "2024-01-12T10:05:00");
  CHECK(turns(ex.records[1]) ==
        Turns{{"user", "Rain tomorrow, shall we move it to Sunday?"}, {"assistant", "Sunday works, same time."}});
  CHECK(ex.records[1].line == 11);

  // Without --me, or with a name that is not in the chat: the whole file, listing who speaks.
  auto none = extract(text, Format::kTxt, {});
  CHECK(none.records.empty());
  CHECK(none.skip_reason ==
        "WhatsApp chat: no --me NAME given; expected the name you appear under, one of: 'Sam Rivera' (3), "
        "'Alex Moreno' (3)");
  auto wrong = extract(text, Format::kWhatsapp, me({"Alexandra"}));
  CHECK(wrong.skip_reason.find("WhatsApp chat: no messages from --me 'Alexandra'; expected one of the speakers") == 0);
  // --format txt reads a chat as text, --format json an export as records (no sniffing when forced).
  ExtractOptions forced = me({"Alex Moreno"});
  forced.sniff = false;
  auto as_text = extract(text, Format::kTxt, forced);
  CHECK(as_text.format.empty());
  REQUIRE(as_text.records.size() == 1);
  CHECK(as_text.records[0].kind == RecordKind::kText);
  CHECK(extract(fixture("chatgpt_conversations.json"), Format::kJson, forced)
            .issues.at(0)
            .reason.find("record [0]: unrecognized record") == 0);
  // A text file that is not a chat stays a text file; forced, it is reported.
  CHECK(extract("Notes from 12/01/2024, nothing else.\n", Format::kTxt, {}).format.empty());
  // A note that starts like a header once is still a note (two headers make a chat).
  auto note = extract("12/01/2024, 10:00 - Standup: shipped the release.\nThen lunch.\n", Format::kTxt, {});
  CHECK(note.format.empty());
  REQUIRE(note.records.size() == 1);
  CHECK(note.records[0].kind == RecordKind::kText);
  CHECK(extract("Just notes.\n", Format::kWhatsapp, me({"x"})).skip_reason.find("not a WhatsApp chat export") == 0);
}

TEST_CASE("WhatsApp iOS export: bracketed 12-hour times, U+200E system and media lines, group names",
          "[data][exports]") {
  auto ex = extract(fixture("_chat.txt"), Format::kTxt, me({"Alex Moreno"}));
  CHECK(ex.format == "whatsapp");
  CHECK(ex.issues.empty());
  CHECK(ex.omitted["media"] == 2);  // "image omitted", "<attached: ...>"
  REQUIRE(ex.records.size() == 2);
  // A group chat (Priya, Jordan Lee): the others' lines carry their names.
  CHECK(turns(ex.records[0]) ==
        Turns{{"user", "Priya: Who has finished chapter 3?\nJordan Lee: Almost, two pages left"},
              {"assistant", "I did. The ending of the chapter surprised me.\nI did not expect the letter."}});
  // 1/13/24: month-first; 8:05:40 PM is 20:05:40.
  CHECK(ex.records[0].provenance.created == "2024-01-05T20:05:40");
  CHECK(turns(ex.records[1]) == Turns{{"user", "Priya: Meeting moved to the 20th"}, {"assistant", "Fine by me"}});
  CHECK(ex.records[1].provenance.created == "2024-01-13T09:15:00");
}

TEST_CASE("Telegram result.json: service messages, text entities, media counted, own forwards dropped",
          "[data][exports]") {
  auto ex = extract(fixture("telegram_result.json"), Format::kJson, me({"Alex Moreno"}));
  CHECK(ex.format == "telegram");
  CHECK(ex.issues.empty());
  CHECK(ex.omitted["media"] == 1);      // the sticker (the photo with a caption keeps its text)
  CHECK(ex.omitted["forwarded"] == 1);  // forwarded by the person: not their words
  REQUIRE(ex.records.size() == 2);
  CHECK(turns(ex.records[0]) ==
        Turns{{"user", "Did you see the recipe I sent?"},
              {"assistant", "Yes, the lemon tart! Recipe here: https://example.org/tart\nI will bake it on Sunday."},
              {"user", "Send a photo after!"}});
  CHECK(ex.records[0].provenance.position == "chat 'Mia Chen' message 102");
  CHECK(ex.records[0].provenance.title == "Mia Chen");
  CHECK(ex.records[0].provenance.created == "2024-02-10T12:00:00");
  // Two days later (a new conversation), opened by the person.
  CHECK(turns(ex.records[1]) == Turns{{"assistant", "It worked, the crust was perfect."}});

  // A whole-account export names the person in personal_information: no --me needed.
  auto account = extract(R"({"personal_information": {"user_id": 1000001, "first_name": "Alex", "last_name": "Moreno"},
      "chats": {"about": "", "list": [{"name": "Mia", "type": "personal_chat", "id": 1, "messages": [
        {"id": 1, "type": "message", "date": "2024-02-10T12:00:00", "date_unixtime": "1707566400", "from": "Mia", "from_id": "user2", "text": "hi"},
        {"id": 2, "type": "message", "date": "2024-02-10T12:01:00", "date_unixtime": "1707566460", "from": "Alex M.", "from_id": "user1000001", "text": "hello"}]},
        {"name": "News", "type": "public_channel", "id": 3, "messages": [
        {"id": 9, "type": "message", "date": "2024-02-10T12:00:00", "date_unixtime": "1707566400", "from": "News", "from_id": "channel3", "text": "headline"}]}]}})",
                         Format::kJson, {});
  CHECK(account.format == "telegram");
  REQUIRE(account.records.size() == 1);  // the channel has no message of the person
  CHECK(turns(account.records[0]) == Turns{{"user", "hi"}, {"assistant", "hello"}});
  auto nobody = extract(fixture("telegram_result.json"), Format::kTelegram, {});
  CHECK(nobody.skip_reason.find("Telegram export: no --me NAME given") == 0);
  // An OpenAI-style {"messages": [...]} record is not mistaken for a Telegram chat.
  auto openai = extract(R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})",
                        Format::kJson, {});
  CHECK(openai.format.empty());
  CHECK(openai.records.size() == 1);
}

TEST_CASE("Obsidian and Logseq vaults: wikilinks, embeds, comments, properties, config folders", "[data][exports]") {
  auto garden = extract(fixture("vault/notes/Garden.md"), Format::kMd, {});
  REQUIRE(garden.records.size() == 1);
  CHECK(garden.records[0].text ==
        "# Garden\n\n"
        "The tomatoes from the balcony need a bigger pot, see Pots > Sizes and Watering.\n"
        "Keep Harvest notes below.\n\n"
        "```python\n# code stays as written: [[not a link]]\nwater = \"[[x]]\"\n```\n\n"
        "## Harvest\n"
        "First tomato on `[[June]]` 12. \n Second line of text.\n");
  CHECK(markdown_vault_text(fixture("graph/pages/Recipes.md")) ==
        "\n- Lemon tart\n\t- Bake at 180 degrees for 25 minutes.\n\t- See  for the crust.\n"
        "- Soup from Winter vegetables\n");
  CHECK(markdown_vault_text("[[Note#^abc123]] and ((not a uuid)) and {{ x }}") ==
        "Note and ((not a uuid)) and {{ x }}");
  // .obsidian/ (hidden) and a Logseq graph's logseq/ folder (settings, backups) are not walked.
  std::vector<std::string> names;
  auto root = test::data_fixtures() / "exports";
  for (const auto& f : sources_walk({root / "vault", root / "graph"}, {}))
    names.push_back(f.path.lexically_relative(root).generic_string());
  CHECK(names == std::vector<std::string>{"graph/journals/2024_02_10.md", "graph/pages/Recipes.md",
                                          "vault/attachments/balcony-2024-05.jpg", "vault/notes/Garden.md"});
}
