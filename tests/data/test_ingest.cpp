// The ingest pipeline end to end (library level): every format in one run, duplicates, redaction, the
// deterministic split, incremental re-runs, atomic updates (a failed and a killed run), bad input.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <iostream>
#include <map>
#include <set>

#include "core/error.h"
#include "core/signals.h"
#include "data/dedup.h"
#include "data/dataset.h"
#include "data/ingest.h"
#include "core/sha256.h"
#include "data_test_util.h"
#include "io/atomic_file.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;
using namespace hearth::data;
namespace fs = std::filesystem;

namespace {

IngestOptions options(const fs::path& src, const fs::path& out) {
  IngestOptions o;
  o.sources = {src};
  o.model_dir = test::stories_dir();
  o.out_dir = out;
  o.threads = 2;
  o.progress = false;
  o.seq_len = 256;
  return o;
}

// Every document of a dataset, decoded (special tokens skipped), with its split. Documents shorter than a
// sequence are never split across sequences, so each doc_starts span is one whole document.
std::map<std::string, Split> documents(const fs::path& dir) {
  auto ds = Dataset::open(dir);
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  std::map<std::string, Split> out;
  for (auto split : {Split::kTrain, Split::kValidation})
    for (size_t i = 0; i < ds.size(split); ++i) {
      auto s = ds.get(split, i);
      for (size_t k = 0; k < s.doc_starts.size(); ++k) {
        size_t b = s.doc_starts[k], e = k + 1 < s.doc_starts.size() ? s.doc_starts[k + 1] : s.tokens.size();
        out[tok.decode(std::vector<int32_t>(s.tokens.begin() + b, s.tokens.begin() + e), true)] = split;
      }
    }
  return out;
}

std::vector<Sequence> all_sequences(const fs::path& dir) {
  auto ds = Dataset::open(dir);
  std::vector<Sequence> v;
  for (auto split : {Split::kTrain, Split::kValidation})
    for (size_t i = 0; i < ds.size(split); ++i) v.push_back(ds.get(split, i));
  return v;
}

bool same_sequences(const std::vector<Sequence>& a, const std::vector<Sequence>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].tokens != b[i].tokens || a[i].loss_mask != b[i].loss_mask || a[i].doc_starts != b[i].doc_starts)
      return false;
  return true;
}

const SourceEntry& entry(const Manifest& m, const fs::path& p) {
  for (const auto& e : m.sources)
    if (e.path == p.string()) return e;
  FAIL("no manifest entry for " << p);
  throw 0;
}

std::set<std::string> folder_files(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) s.insert(e.path().lexically_relative(dir).generic_string());
  return s;
}

}  // namespace

TEST_CASE("ingest: every format and record shape in one run", "[data]") {
  auto src = test::data_scratch("all_formats/src"), out = src.parent_path() / "out";
  test::file_put(src / "notes/plain.txt", "A plain note about the garden.");
  test::file_put(src / "notes/post.md", "---\ntitle: Post\n---\n# Markdown post\n\nWith a paragraph.");
  test::file_put(src / "web/page.html",
                 "<html><head><script>alert(1)</script></head><body><p>Visible &amp; kept</p></body></html>");
  test::file_put(src / "mail/one.eml", "From: a@b.c\nSubject: s\n\nMail body here.\n\n> quoted\n");
  test::file_put(src / "mail/box.mbox",
                 "From x Mon Jan 1 00:00:00 2024\nSubject: a\n\nFirst message.\n\n"
                 "From y Mon Jan 1 00:00:00 2024\nSubject: b\n\nSecond message.\n");
  test::file_put(
      src / "chats/export.jsonl",
      "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Hello.\"}]}\n"
      "{\"conversations\":[{\"from\":\"human\",\"value\":\"Yo\"},{\"from\":\"gpt\",\"value\":\"Hey.\"}]}\n"
      "{\"prompt\":\"Capital of France?\",\"completion\":\" Paris.\"}\n{\"text\":\"Jsonl text record.\"}\n");
  test::file_put(src / "chats/array.json", "[{\"text\": \"Json array record.\"}]");
  fs::create_directories(src / "docs");
  fs::copy_file(test::data_fixtures() / "text.pdf", src / "docs/report.pdf");
  test::file_put(src / ".secret/hidden.txt", "never read");
  test::file_put(src / "photo.jpg", std::string("\xFF\xD8\xFF\xE0", 4));
  auto r = ingest_run(options(src, out));
  CHECK(r.added == 9);
  const auto& m = r.manifest;
  CHECK(m.sources.size() == 9);  // the hidden folder is not walked
  CHECK(entry(m, src / "chats/export.jsonl").records == 4);
  CHECK(entry(m, src / "chats/export.jsonl").format == "jsonl");
  CHECK(entry(m, src / "mail/box.mbox").records == 2);
  CHECK(entry(m, src / "docs/report.pdf").format == "pdf");
  CHECK(entry(m, src / "photo.jpg").skipped.find("unsupported file type '.jpg'") == 0);
  CHECK(entry(m, src / "photo.jpg").issues.empty());  // a rule, not bad input
  CHECK(m.totals["records"] == 12);
  CHECK(m.totals["files_used"] == 8);
  auto docs = documents(out);
  CHECK(docs.size() == 12);
  for (std::string want :
       {"A plain note about the garden.", "# Markdown post\n\nWith a paragraph.", "Visible & kept", "Mail body here.",
        "First message.", "Second message.", "Jsonl text record.", "Json array record.", "Capital of France? Paris."}) {
    if (!docs.count(want))
      for (auto& [k, v] : docs) std::cerr << "DOC[" << k << "]\n";
    CHECK(docs.count(want) == 1);
  }
  bool pdf = false, script = false;
  for (const auto& [text, split] : docs) {
    pdf |= text.find("The tomatoes ripened early this year.") != std::string::npos;
    script |= text.find("alert") != std::string::npos;
  }
  CHECK(pdf);
  CHECK_FALSE(script);
  // Sequence invariants the trainer relies on.
  for (const auto& s : all_sequences(out)) {
    CHECK(s.tokens.size() <= 256);
    CHECK(s.loss_mask.size() == s.tokens.size());
    CHECK(s.doc_starts.at(0) == 0);
  }
  CHECK(fs::exists(out / m.tokenizer["dir"].get<std::string>() / "tokenizer.json"));
}

TEST_CASE("ingest: exact and near duplicates removed and counted, redactions counted", "[data]") {
  auto src = test::data_scratch("dedup/src"), out = src.parent_path() / "out";
  std::string long_text;
  for (int i = 0; i < 120; ++i) long_text += "word" + std::to_string(i) + (i % 10 == 9 ? ".\n" : " ");
  std::string near = long_text;
  near.replace(near.find("word50 "), 7, "changed ");
  test::file_put(src / "a.txt", long_text);
  test::file_put(src / "b.txt", "  " + long_text + "\n\n");  // same words, other spacing: exact
  test::file_put(src / "c.txt", near);                       // 1 word of 120 changed: near
  test::file_put(src / "d.txt", "Keys: AKIAIOSFODNN7EXAMPLE, mail ann@example.com, https://u:pw123@host.org/");
  auto o = options(src, out);
  o.redact.emails = true;
  auto r = ingest_run(o);
  CHECK(entry(r.manifest, src / "b.txt").duplicates_exact == 1);
  CHECK(entry(r.manifest, src / "b.txt").documents == 0);
  CHECK(entry(r.manifest, src / "c.txt").duplicates_near == 1);
  CHECK(entry(r.manifest, src / "a.txt").documents == 1);
  CHECK(r.manifest.totals["duplicates_exact"] == 1);
  CHECK(r.manifest.totals["duplicates_near"] == 1);
  CHECK(r.manifest.totals["redactions"] == nlohmann::json{{"api_token", 1}, {"email", 1}, {"password", 1}});
  auto docs = documents(out);
  CHECK(docs.count("Keys: [API_TOKEN], mail [EMAIL], https://u:[PASSWORD]@host.org/") == 1);

  o.near_dedup = false;
  auto r2 = ingest_run(o);
  CHECK(r2.manifest.totals["duplicates_near"] == 0);
  CHECK(r2.unchanged == 4);  // dedup settings only re-pack
}

TEST_CASE("ingest: the validation split follows each document's content hash and never moves", "[data]") {
  auto src = test::data_scratch("split/src"), out = src.parent_path() / "out";
  auto text = [](int i) {
    return "Note number " + std::to_string(i) + " says something unique about day " + std::to_string(i * 7) + ".";
  };
  std::string first, second;
  for (int i = 0; i < 40; ++i) first += "{\"text\": \"" + text(i) + "\"}\n";
  for (int i = 40; i < 60; ++i) second += "{\"text\": \"" + text(i) + "\"}\n";
  test::file_put(src / "one.jsonl", first);
  test::file_put(src / "two.jsonl", second);
  auto o = options(src, out);
  o.val_fraction = 0.3;
  ingest_run(o);
  auto before = documents(out);
  REQUIRE(before.size() == 60);
  size_t n_val = 0;
  for (int i = 0; i < 60; ++i) {
    // Independent of the pipeline: SHA-256 of the text, first 8 bytes little-endian, as a fraction of 2^64.
    bool want_val = static_cast<double>(digest_u64(sha256(text(i))) >> 11) * 0x1.0p-53 < 0.3;
    CHECK((before.at(text(i)) == Split::kValidation) == want_val);
    n_val += want_val;
  }
  CHECK(n_val > 5);
  CHECK(n_val < 35);
  // Re-ingest with one file removed and another added: the remaining documents keep their split.
  fs::remove(src / "two.jsonl");
  test::file_put(src / "three.txt", "A brand new note.");
  ingest_run(o);
  auto after = documents(out);
  CHECK(after.size() == 41);
  for (int i = 0; i < 40; ++i) CHECK(after.at(text(i)) == before.at(text(i)));
}

TEST_CASE("ingest: incremental re-runs process only what changed and equal a fresh ingest", "[data]") {
  auto base = test::data_scratch("incremental");
  auto src = base / "src", out = base / "out", fresh = base / "fresh";
  test::file_put(src / "keep.txt", "This file never changes.");
  test::file_put(src / "touch.txt", "This file is touched but keeps its content.");
  test::file_put(src / "edit.txt", "Version one of the edited file.");
  test::file_put(src / "gone.txt", "This file will be deleted.");
  auto o = options(src, out);
  auto r1 = ingest_run(o);
  CHECK(r1.added == 4);
  CHECK(r1.manifest.generation == 1);
  auto keep_cache = out / entry(r1.manifest, src / "keep.txt").cache;
  auto keep_cache_time = fs::last_write_time(keep_cache);

  auto r0 = ingest_run(o);  // nothing changed: nothing read, shards kept
  CHECK(r0.unchanged == 4);
  CHECK(r0.added + r0.changed + r0.removed == 0);
  CHECK(r0.bytes_processed == 0);
  CHECK(r0.manifest.generation == 1);

  test::file_put(src / "edit.txt", "Version two of the edited file, longer.");
  test::file_put(src / "touch.txt", "This file is touched but keeps its content.");
  fs::last_write_time(src / "touch.txt", fs::last_write_time(src / "touch.txt") + std::chrono::hours(1));
  fs::remove(src / "gone.txt");
  test::file_put(src / "new.md", "# A new file");
  auto r2 = ingest_run(o);
  CHECK(r2.added == 1);
  CHECK(r2.changed == 1);
  CHECK(r2.removed == 1);
  CHECK(r2.unchanged == 2);
  CHECK(r2.manifest.generation == 2);
  CHECK(fs::last_write_time(keep_cache) == keep_cache_time);  // its cache was reused, not rewritten
  auto docs = documents(out);
  CHECK(docs.count("Version two of the edited file, longer.") == 1);
  CHECK(docs.count("Version one of the edited file.") == 0);
  CHECK(docs.count("This file will be deleted.") == 0);
  // Old generation's shards and the deleted file's cache are gone.
  for (const auto& f : folder_files(out)) CHECK(f.find("-000001-") == std::string::npos);

  auto of = options(src, fresh);
  ingest_run(of);
  CHECK(same_sequences(all_sequences(out), all_sequences(fresh)));

  // A different tokenizer: every file is tokenized again, and trainers can tell.
  auto ds = Dataset::open(out);
  CHECK_THROWS_AS(dataset_tokenizer_check(ds, test::assets_dir() / "qwen3"), ConfigError);
  CHECK_NOTHROW(dataset_tokenizer_check(ds, test::stories_dir()));
  auto oq = o;
  oq.model_dir = test::assets_dir() / "qwen3";
  auto rq = ingest_run(oq);
  CHECK(rq.changed == 4);
  CHECK(Dataset::open(out).tokenizer_fingerprint() == tokenizer_fingerprint(test::assets_dir() / "qwen3"));
}

TEST_CASE("ingest: a failed or killed run leaves the previous dataset intact and readable", "[data]") {
  auto base = test::data_scratch("atomic");
  auto src = base / "src", out = base / "out";
  for (int i = 0; i < 5; ++i)
    test::file_put(src / ("n" + std::to_string(i) + ".txt"), "Note " + std::to_string(i) + " text.");
  auto o = options(src, out);
  ingest_run(o);
  auto before = all_sequences(out);
  std::string manifest_before = io::file_read(out / "manifest.json");
  test::file_put(src / "n9.txt", "A new note that the failed run would have added.");

  auto failing = o;
  failing.on_stage = [](const std::string& stage) {
    if (stage == "shards_written") throw IoError("simulated failure");
  };
  CHECK_THROWS_AS(ingest_run(failing), IoError);
  CHECK(io::file_read(out / "manifest.json") == manifest_before);
  CHECK(same_sequences(all_sequences(out), before));

  // Killed (SIGKILL) after the new shards are written, before the manifest is replaced.
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto killed = o;
    killed.on_stage = [](const std::string& stage) {
      if (stage == "shards_written") ::raise(SIGKILL);
    };
    try {
      ingest_run(killed);
    } catch (...) {
    }
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(io::file_read(out / "manifest.json") == manifest_before);
  CHECK(same_sequences(all_sequences(out), before));
  bool leftovers = false;
  for (const auto& f : folder_files(out)) leftovers |= f.find("-000002-") != std::string::npos;
  CHECK(leftovers);  // the killed run's shards, unreferenced

  auto r = ingest_run(o);  // the next run completes and removes the leftovers
  CHECK(r.added == 1);
  CHECK(documents(out).count("A new note that the failed run would have added.") == 1);
  for (const auto& f : folder_files(out)) {
    CHECK(f.find(".tmp.") == std::string::npos);
    if (f.find(".shard") != std::string::npos) CHECK(f.find("-000002-") != std::string::npos);
  }
}

TEST_CASE("ingest: bad input is reported with path:line, counted, skipped, --strict fails", "[data]") {
  auto base = test::data_scratch("bad");
  auto src = base / "src", out = base / "out";
  test::file_put(src / "good.txt", "Good text.");
  test::file_put(src / "latin1.txt", "fine line\ncaf\xE9\n");
  test::file_put(src / "chat.jsonl", "{\"text\": \"ok line\"}\n{broken\n");
  test::file_put(src / "empty.md", "");
  fs::copy_file(test::data_fixtures() / "encrypted.pdf", src / "locked.pdf");
  fs::copy_file(test::data_fixtures() / "image_only.pdf", src / "scan.pdf");
  test::file_put(src / "big.txt", std::string(5000, 'x'));
  auto o = options(src, out);
  o.max_file_size = 4096;
  auto r = ingest_run(o);
  const auto& m = r.manifest;
  CHECK(entry(m, src / "latin1.txt").issues.at(0).line == 2);
  CHECK(entry(m, src / "latin1.txt").skipped.find("invalid UTF-8") != std::string::npos);
  CHECK(entry(m, src / "chat.jsonl").issues.at(0).line == 2);
  CHECK(entry(m, src / "chat.jsonl").records == 1);
  CHECK(entry(m, src / "empty.md").skipped == "empty file");
  CHECK(entry(m, src / "locked.pdf").skipped.find("encrypted") != std::string::npos);
  CHECK(entry(m, src / "scan.pdf").skipped.find("no text layer") != std::string::npos);
  CHECK(entry(m, src / "big.txt").skipped.find("--max-file-size") != std::string::npos);
  CHECK(entry(m, src / "big.txt").issues.empty());
  CHECK(m.totals["issues"] == 5);
  CHECK(m.totals["files_with_issues"] == 5);
  CHECK(m.totals["files_used"] == 2);

  auto strict = o;
  strict.strict = true;
  strict.out_dir = base / "strict_out";
  CHECK_THROWS_WITH(ingest_run(strict), Catch::Contains((src / "chat.jsonl").string() + ":2: malformed JSON"));
  CHECK_FALSE(fs::exists(base / "strict_out" / "manifest.json"));

  // Unreadable: as root chmod does not stop reads, so use a file whose read fails (/proc/self/mem).
  auto src2 = base / "src2";
  test::file_put(src2 / "ok.txt", "fine");
  if (::geteuid() == 0) fs::create_symlink("/proc/self/mem", src2 / "unreadable.txt");
  else {
    test::file_put(src2 / "unreadable.txt", "secret");
    ::chmod((src2 / "unreadable.txt").c_str(), 0);
  }
  auto o2 = options(src2, base / "out2");
  o2.follow_symlinks = true;  // the /proc link leads out of src2 (skipped otherwise, see the symlink test)
  auto r2 = ingest_run(o2);
  CHECK(entry(r2.manifest, src2 / "unreadable.txt").issues.at(0).reason.rfind("unreadable: ", 0) == 0);
  o2.strict = true;
  o2.out_dir = base / "out3";
  CHECK_THROWS_AS(ingest_run(o2), IoError);
}

TEST_CASE("ingest: options are validated before any work", "[data]") {
  auto base = test::data_scratch("options");
  test::file_put(base / "src/a.txt", "x");
  auto o = options(base / "src", base / "out");
  auto bad = o;
  bad.val_fraction = 1.5;
  CHECK_THROWS_AS(ingest_run(bad), ConfigError);
  bad = o;
  bad.near_dup_threshold = 0;
  CHECK_THROWS_AS(ingest_run(bad), ConfigError);
  bad = o;
  bad.seq_len = 4;
  CHECK_THROWS_AS(ingest_run(bad), ConfigError);
  bad = o;
  bad.format = "docx";
  CHECK_THROWS_AS(ingest_run(bad), ConfigError);
  bad = o;
  bad.model_dir = base / "nope";
  CHECK_THROWS_AS(ingest_run(bad), IoError);
  bad = o;
  bad.sources = {base / "missing"};
  CHECK_THROWS_AS(ingest_run(bad), IoError);
  CHECK_FALSE(fs::exists(base / "out" / "manifest.json"));
  CHECK(seq_len_default(test::stories_dir()) == 512);            // max_position_embeddings of stories260K
  CHECK(seq_len_default(test::assets_dir() / "qwen3") == 2048);  // no config.json
}

TEST_CASE("a signal stops tokenizing one huge text inside an InterruptScope, and nowhere else", "[data]") {
  // Ingest's workers run inside a scope, so SIGTERM ends even one 45 MB file's work within a second (it took 13 s
  // to finish the file first); serve's threads are outside any scope and finish their work. The signal is raised
  // in a child process, whose exit code says which check failed (the flag it sets cannot be cleared).
  auto tok = tokenizer::Tokenizer::load(test::stories_dir());
  std::string big;
  while (big.size() < 300000) big += "the cat sat on the mat and lily was happy. ";
  const pid_t pid = fork();
  if (pid == 0) {
    signals_install();
    ::raise(SIGTERM);
    if (!interrupt_requested()) _exit(10);
    try {
      interrupt_point();  // outside a scope: nothing
      if (tok.encode(big).empty()) _exit(11);
    } catch (...) {
      _exit(12);
    }
    InterruptScope scope("ingest");
    try {
      tok.encode(big);  // one word of 300 KB (no pre-tokenizer): only its own loops can stop it
      _exit(13);
    } catch (const InterruptedError& e) {
      if (std::string(e.what()) != "ingest: interrupted by signal") _exit(14);
    } catch (...) {
      _exit(15);
    }
    try {
      minhash(big);
      _exit(16);
    } catch (const InterruptedError&) {
    }
    _exit(0);
  }
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
