// End to end: `hearth ingest` and `hearth dataset inspect` run as a user would, on the bundled samples
// (datasets/), checking exit codes (docs/cli.md: 0 ok, 2 usage, 3 I/O, 4 format), --json output and that
// the audit view shows exactly what is trained on.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>

#include "core/error.h"
#include "data/dataset.h"
#include "data_test_util.h"
#include "io/atomic_file.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

struct Run {
  int code;
  std::string out, err;
};

Run run_hearth(const std::string& args) {
  auto dir = test::data_scratch("cli_io");
  auto out = dir / "stdout", err = dir / "stderr";
  std::string cmd = "'" + test::hearth_binary().string() + "' " + args + " >'" + out.string() + "' 2>'" + err.string() +
                    "'";
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, io::file_read(out), io::file_read(err)};
}

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }
std::string model() { return "--model " + q(test::stories_dir()); }
fs::path samples() { return test::source_dir() / "datasets" / "personal"; }

}  // namespace

TEST_CASE("hearth ingest on the bundled samples, then dataset inspect", "[cli]") {
  auto out = test::data_scratch("cli_samples") / "ds";
  auto r = run_hearth("--json ingest " + q(samples()) + " " + model() + " --out " + q(out) + " --redact emails,phones");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["added"].get<int>() >= 30);
  CHECK(j["changed"] == 0);
  CHECK(j["totals"]["files_skipped"].get<int>() == 0);
  CHECK(j["totals"]["redactions"]["api_token"].get<int>() >= 1);
  CHECK(j["totals"]["redactions"]["email"].get<int>() >= 1);
  CHECK_FALSE(j["totals"]["found_kept"].contains("email"));  // --redact emails: none kept

  CHECK(j["totals"]["duplicates_exact"].get<int>() >= 1);
  CHECK(j["train"]["sequences"].get<int>() > 0);
  CHECK(j["validation"]["sequences"].get<int>() > 0);
  CHECK(r.err.find("no chat_template") != std::string::npos);  // stories260K: ChatML fallback, with a warning

  auto again = run_hearth("--json ingest " + q(samples()) + " " + model() + " --out " + q(out) +
                          " --redact emails,phones");
  REQUIRE(again.code == 0);
  CHECK(nlohmann::json::parse(again.out)["unchanged"] == j["added"]);

  auto ins = run_hearth("--json dataset inspect " + q(out) + " --all --verify");
  REQUIRE(ins.code == 0);
  auto ij = nlohmann::json::parse(ins.out);
  auto ds = data::Dataset::open(out);
  CHECK(ij["sequences"].size() == ds.size(data::Split::kTrain) + ds.size(data::Split::kValidation));
  CHECK(ij["verified"] == true);
  // Every target token is shown as target text and nothing secret is left anywhere.
  std::string all_text;
  for (const auto& s : ij["sequences"])
    for (const auto& seg : s["segments"]) all_text += seg["text"].get<std::string>();
  for (const char* secret : {"AKIA", "ghp_", "BEGIN OPENSSH PRIVATE KEY", "@example.com"})
    CHECK(all_text.find(secret) == std::string::npos);
  CHECK(all_text.find("[API_TOKEN]") != std::string::npos);

  // Without --redact, the same personal data is kept and reported per kind: summary, manifest, inspect.
  auto kept_out = test::data_scratch("cli_samples_kept") / "ds";
  auto kept = run_hearth("ingest " + q(samples()) + " " + model() + " --out " + q(kept_out));
  REQUIRE(kept.code == 0);
  CHECK(kept.out.find("  found, not redacted: ") != std::string::npos);
  CHECK(kept.out.find("email") != std::string::npos);
  CHECK(kept.out.find("--redact ") != std::string::npos);
  const auto kept_manifest = nlohmann::json::parse(io::file_read(kept_out / "manifest.json"));
  CHECK(kept_manifest["totals"]["found_kept"]["email"] == j["totals"]["redactions"]["email"]);
  uint64_t per_file = 0;
  for (const auto& s : kept_manifest["sources"]) per_file += s["found_kept"].value("email", uint64_t(0));
  CHECK(per_file == kept_manifest["totals"]["found_kept"]["email"].get<uint64_t>());
  auto kept_ins = run_hearth("dataset inspect " + q(kept_out) + " -n 0");
  CHECK(kept_ins.out.find("kept     ") != std::string::npos);
  CHECK(kept_ins.out.find(" email") != std::string::npos);

  auto text = run_hearth("dataset inspect " + q(out) + " -n 1");
  REQUIRE(text.code == 0);
  CHECK(text.out.find("tokenizer sha256:") != std::string::npos);
  CHECK(text.out.find("=== train #0") != std::string::npos);
  CHECK(text.out.find("«") != std::string::npos);  // context spans marked off a terminal
}

TEST_CASE("hearth ingest / dataset inspect exit codes", "[cli]") {
  auto dir = test::data_scratch("cli_codes");
  test::file_put(dir / "src/a.txt", "hello");
  test::file_put(dir / "src/b.jsonl", "{\"text\": \"x\"}\n{oops\n");
  std::string src = q(dir / "src");
  CHECK(run_hearth("ingest " + src + " --out " + q(dir / "o")).code == 2);  // --model missing
  CHECK(run_hearth("ingest " + src + " " + model() + " --out " + q(dir / "o") + " --train-on everything").code == 2);
  CHECK(run_hearth("ingest " + src + " " + model() + " --out " + q(dir / "o") + " --val-fraction 1.5").code == 2);
  CHECK(run_hearth("ingest " + src + " " + model() + " --out " + q(dir / "o") + " --redact ssn").code == 2);
  CHECK(run_hearth("ingest " + q(dir / "missing") + " " + model() + " --out " + q(dir / "o")).code == 3);
  CHECK(run_hearth("ingest " + src + " --model " + q(dir) + " --out " + q(dir / "o")).code == 3);
  auto strict = run_hearth("--json ingest " + src + " " + model() + " --out " + q(dir / "o") + " --strict");
  CHECK(strict.code == 4);
  CHECK(strict.err.find("b.jsonl:2: malformed JSON") != std::string::npos);
  CHECK(nlohmann::json::parse(strict.out)["error"]["exit_code"] == 4);
  auto ok = run_hearth("ingest " + src + " " + model() + " --out " + q(dir / "o"));
  CHECK(ok.code == 0);
  CHECK(ok.err.find("b.jsonl:2: malformed JSON") != std::string::npos);
  CHECK(ok.out.find("1 added") == std::string::npos);
  CHECK(ok.out.find("2 added") != std::string::npos);

  CHECK(run_hearth("dataset inspect " + q(dir / "nothing")).code == 3);
  CHECK(run_hearth("dataset").code == 2);
  io::atomic_write(dir / "o" / "manifest.json", "{\"format\": \"hearth-dataset\", \"schema_version\": 7}");
  auto bad = run_hearth("dataset inspect " + q(dir / "o"));
  CHECK(bad.code == 4);
  CHECK(bad.err.find("schema_version") != std::string::npos);
}

TEST_CASE("ingest --out never touches files it did not write", "[cli]") {
  // A person's folder with files whose names look like a dataset's (a .zst, a .shard, a tokenizer- folder).
  auto dir = test::data_scratch("cli_out_guard");
  test::file_put(dir / "src/a.txt", "Tom had a red ball. Lily played with the big dog all day long.");
  const fs::path mine = dir / "mine";
  test::file_put(mine / "notes.zst", "my compressed notes");
  test::file_put(mine / "old.shard", "not a hearth shard");
  test::file_put(mine / "tokenizer-mine/vocab.txt", "mine");
  test::file_put(mine / "cache/photo.zst", "my photo");
  const auto snapshot = [&] {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(mine))
      if (e.is_regular_file()) files[fs::relative(e.path(), mine).string()] = io::file_read(e.path());
    return files;
  };
  const auto before = snapshot();

  auto r = run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(mine));
  CHECK(r.code == 2);
  CHECK(r.err.find("not a hearth dataset") != std::string::npos);
  CHECK(r.err.find("--force") != std::string::npos);
  CHECK(snapshot() == before);

  // With --force the dataset is written beside them, twice (the second run garbage-collects its own old files),
  // and every file of the person's is still there, unchanged.
  REQUIRE(run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(mine) + " --force").code == 0);
  test::file_put(dir / "src/b.txt", "Sam saw a blue kite. Mia ran to the park with a small cat.");
  REQUIRE(run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(mine) + " --force").code == 0);
  auto after = snapshot();
  for (const auto& [name, content] : before) {
    INFO(name);
    REQUIRE(after.count(name) == 1);
    CHECK(after[name] == content);
  }
  CHECK(fs::exists(mine / "manifest.json"));
  // Now a dataset: later runs need no --force.
  CHECK(run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(mine)).code == 0);
}

TEST_CASE("ingest does not follow links out of a source folder unless asked", "[cli]") {
  auto dir = test::data_scratch("cli_symlinks");
  test::file_put(dir / "src/a.txt", "Tom had a red ball. Lily played with the big dog all day long in the park.");
  test::file_put(dir / "src/sub/real.txt", "Sam saw a blue kite. Mia ran to the park with a small cat and a hat.");
  test::file_put(dir / "elsewhere/secret.txt", "root:$6$hash:19000:0:99999:7::: the password file of the machine");
  fs::create_symlink(dir / "elsewhere/secret.txt", dir / "src/shadow.txt");  // leads out: skipped
  fs::create_symlink(dir / "src/sub/real.txt", dir / "src/inside.txt");      // stays inside: read
  auto paths = [](const fs::path& out) {                                     // the files the manifest lists as read
    std::set<std::string> names;
    const auto manifest = nlohmann::json::parse(io::file_read(out / "manifest.json"));
    for (const auto& s : manifest["sources"]) names.insert(fs::path(s["path"].get<std::string>()).filename().string());
    return names;
  };
  auto r = run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(dir / "o"));
  REQUIRE(r.code == 0);
  CHECK(r.err.find("shadow.txt") != std::string::npos);
  CHECK(r.err.find("--follow-symlinks") != std::string::npos);
  CHECK(paths(dir / "o") == std::set<std::string>{"a.txt", "inside.txt", "real.txt"});
  REQUIRE(
      run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(dir / "o2") + " --follow-symlinks").code ==
      0);
  CHECK(paths(dir / "o2").count("shadow.txt") == 1);
}

TEST_CASE("ingest of service exports: the right turns are targets, provenance and omitted parts recorded", "[cli]") {
  // tests/data/fixtures/exports/: ChatGPT and Claude conversations.json, WhatsApp (Android, iOS), Telegram
  // result.json, a Google Takeout mbox, an Obsidian vault and a Logseq graph, all written for hearth.
  auto out = test::data_scratch("cli_exports") / "ds";
  const fs::path exports = test::data_fixtures() / "exports";
  auto r = run_hearth("--json ingest " + q(exports) + " " + model() + " --out " + q(out) + " --me 'Alex Moreno'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["totals"]["files_with_issues"] == 0);
  REQUIRE(j["files_without_documents"].size() == 1);  // the vault's picture
  CHECK(j["files_without_documents"][0]["path"].get<std::string>().find("balcony-2024-05.jpg") != std::string::npos);

  std::map<std::string, nlohmann::json> by_name;
  const auto manifest = nlohmann::json::parse(io::file_read(out / "manifest.json"));
  for (const auto& s : manifest["sources"]) by_name[fs::path(s["path"].get<std::string>()).filename().string()] = s;
  CHECK(by_name["chatgpt_conversations.json"]["format"] == "chatgpt");
  CHECK(by_name["claude_conversations.json"]["format"] == "claude");
  CHECK(by_name["telegram_result.json"]["format"] == "telegram");
  CHECK(by_name["_chat.txt"]["format"] == "whatsapp");
  CHECK(by_name["Garden.md"]["format"] == "md");
  CHECK(by_name["_chat.txt"]["omitted"]["media"] == 2);
  CHECK(by_name["telegram_result.json"]["omitted"]["forwarded"] == 1);
  CHECK(by_name["All mail Including Spam and Trash.mbox"]["format"] == "mbox");
  CHECK(by_name["All mail Including Spam and Trash.mbox"]["records"] == 2);
  CHECK(by_name["All mail Including Spam and Trash.mbox"]["omitted"]["attachments"] == 1);
  const auto& prov = by_name["chatgpt_conversations.json"]["provenance"];
  REQUIRE(prov.size() == 2);
  CHECK(prov[0]["title"] == "Sourdough starter");
  CHECK(prov[0]["position"] == "conversation [0] 'Sourdough starter'");
  CHECK(prov[0]["created"] == "2024-05-01T10:00:00Z");
  CHECK(by_name["WhatsApp Chat with Sam Rivera.txt"]["provenance"][0]["title"] == "Sam Rivera");
  CHECK(by_name["WhatsApp Chat with Sam Rivera.txt"]["provenance"][0]["line"] == 2);

  // What the model learns: the person's and the assistants' turns are targets, the rest context; nothing of the
  // skipped branches, tools, attachments, forwards, media lines or vault markup is anywhere.
  auto ins = run_hearth("--json dataset inspect " + q(out) + " --all");
  REQUIRE(ins.code == 0);
  std::string targets, context;
  const auto shown = nlohmann::json::parse(ins.out);
  for (const auto& s : shown["sequences"])
    for (const auto& seg : s["segments"]) (seg["target"] == true ? targets : context) += seg["text"].get<std::string>();
  for (const char* t : {"Twice a day at room temperature", "It doubled, so it is ready", "Use a 20-litre pot per plant",
                        "Yes! Let's start at 8.\nBring water", "I did. The ending of the chapter",
                        "Yes, the lemon tart! Recipe here", "see Pots > Sizes and Watering",
                        // Takeout mbox: QP UTF-8 plain part (not its HTML twin); base64 windows-1252 HTML-only mail.
                        "Le g\xC3\xA2teau \xC3\xA9tait parfait, la p\xC3\xA2te bien croustillante.",
                        "Caf\xC3\xA9 \xE2\x80\x93 on Friday?\n\nBring the map & snacks."})
    CHECK(targets.find(t) != std::string::npos);
  for (const char* c :
       {"How often should I feed a rye starter?", "Here is my jar after 12 hours", "Are we still on for the hike",
        "Priya: Who has finished chapter 3?", "Did you see the recipe I sent?"})
    CHECK(context.find(c) != std::string::npos);
  const std::string all = targets + context;
  for (const char* never :
       {"OLD BRANCH", "print(12 * 2)", "I bake on weekends", "ATTACHMENT TEXT", "Short sun", "FORWARDED",
        "Media omitted", "image omitted", "end-to-end encrypted", "![[", "[[Pots", "%%", "ask the neighbour",
        "title::", "HTML TWIN", "Voici la recette", "a \xC3\xA9crit", "X-Gmail-Labels"})
    CHECK(all.find(never) == std::string::npos);
}

TEST_CASE("ingest: a chat export without --me, --strict, and a run where every file yields nothing", "[cli]") {
  auto dir = test::data_scratch("cli_nothing");
  const fs::path chat = test::data_fixtures() / "exports" / "_chat.txt";
  test::file_put(dir / "src/note.txt", "Tom had a red ball. Lily played with the big dog all day long.");
  fs::copy_file(chat, dir / "src/_chat.txt");
  auto r = run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(dir / "o"));
  REQUIRE(r.code == 0);
  CHECK(r.err.find("_chat.txt: WhatsApp chat: no --me NAME given; expected the name you appear under, one of: "
                   "'Priya' (2), 'Alex Moreno' (2), 'Jordan Lee' (1)") != std::string::npos);
  CHECK(r.out.find("nothing from " + (dir / "src/_chat.txt").string() + ": WhatsApp chat: no --me NAME given") !=
        std::string::npos);
  auto strict = run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(dir / "o2") + " --strict");
  CHECK(strict.code == 4);
  CHECK(strict.err.find("_chat.txt: WhatsApp chat: no --me NAME given") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o2" / "manifest.json"));
  CHECK(run_hearth("ingest " + q(dir / "src") + " " + model() + " --out " + q(dir / "o") + " --me ''").code == 2);

  // Nothing usable anywhere: exit 4 naming each file, and the dataset from before is left as it was.
  const std::string before = io::file_read(dir / "o" / "manifest.json");
  test::file_put(dir / "empty/blank.txt", "  \n");
  test::file_put(dir / "empty/photo.jpg", "JFIF");
  fs::copy_file(chat, dir / "empty/_chat.txt");
  auto none = run_hearth("ingest " + q(dir / "empty") + " " + model() + " --out " + q(dir / "o"));
  CHECK(none.code == 4);
  CHECK(none.err.find("none of the 3 files yielded anything to train on") != std::string::npos);
  CHECK(none.err.find("blank.txt (empty file)") != std::string::npos);
  CHECK(none.err.find("photo.jpg (unsupported file type '.jpg'") != std::string::npos);
  CHECK(io::file_read(dir / "o" / "manifest.json") == before);
}
