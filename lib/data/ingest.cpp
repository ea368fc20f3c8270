#include "data/ingest.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/signals.h"
#include "data/file_process.h"
#include "data/packing_run.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/remove_tree.h"
#include "tokenizer/tokenizer.h"

namespace hearth::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bump when the document cache or the processing changes (2: chats holding special-token text are kept;
// 3: exports told by content, Markdown vault syntax reduced, provenance and omitted parts per file; 4: mail by
// GMime, HTML by gumbo, personal data found and kept counted per file).
constexpr int kCacheVersion = 4;

// An exclusive lock on DATASET/.lock for the whole run (cron jobs may overlap).
class DirLock {
 public:
  explicit DirLock(const fs::path& dir) {
    fs::path p = dir / ".lock";
    fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(fmt::format("{}: cannot create the lock file", p.string()));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      throw IoError(
          fmt::format("{}: another hearth ingest is updating this dataset; expected it to be idle", dir.string()));
    }
  }
  ~DirLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }

 private:
  int fd_ = -1;
};

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string processing_key(const IngestOptions& o, const std::string& fingerprint, int64_t seq_len) {
  json k = {{"cache_version", kCacheVersion},
            {"tokenizer", fingerprint},
            {"train_on", o.train_on == TrainOn::kAll ? "all" : "assistant"},
            {"redact", redact_describe(o.redact)},
            {"mail_headers", o.mail_headers},
            {"me", o.me},
            {"format", o.format},
            {"seq_len", seq_len}};
  return sha256_hex(k.dump());
}

json options_json(const IngestOptions& o, int64_t seq_len) {
  json sources = json::array();
  for (const auto& s : o.sources) sources.push_back(fs::absolute(s).lexically_normal().string());
  return {{"sources", sources},
          {"include", o.include},
          {"exclude", o.exclude},
          {"max_file_size", o.max_file_size},
          {"format", o.format},
          {"seq_len", seq_len},
          {"train_on", o.train_on == TrainOn::kAll ? "all" : "assistant"},
          {"val_fraction", o.val_fraction},
          {"near_dedup", o.near_dedup},
          {"near_dup_threshold", o.near_dup_threshold},
          {"redact", redact_describe(o.redact)},
          {"mail_headers", o.mail_headers},
          {"me", o.me},
          {"strict", o.strict},
          {"shard_tokens", o.shard_tokens}};
}

// Copies the tokenizer files into DATASET/tokenizer-<fingerprint prefix>/ (so the dataset can be decoded
// without the model folder); returns the folder name.
std::string tokenizer_copy(const fs::path& model_dir, const fs::path& out_dir, const std::string& fingerprint) {
  std::string name = "tokenizer-" + fingerprint.substr(7, 16);
  fs::path dir = out_dir / name;
  // The folder is named by the fingerprint and its files are written atomically: matching sizes mean a
  // complete copy (re-hashing a 10 MB tokenizer.json on every run would cost more than the copy check).
  bool complete = true;
  for (const char* f : kTokenizerFiles) {
    std::error_code a, b;
    bool in_model = fs::exists(model_dir / f);
    if (in_model != fs::exists(dir / f) || (in_model && fs::file_size(model_dir / f, a) != fs::file_size(dir / f, b)))
      complete = false;
  }
  if (complete) return name;
  fs::create_directories(dir);
  for (const char* f : kTokenizerFiles)
    if (fs::exists(model_dir / f)) io::atomic_write(dir / f, io::file_read(model_dir / f));
  return name;
}

// Runs file_process over `files` on `threads` threads, drawing progress on the calling thread.
std::vector<FileOutcome> files_process(const std::vector<SourceFile>& files,
                                       const std::map<std::string, const SourceEntry*>& old, const FileContext& ctx,
                                       int threads, bool progress) {
  std::vector<FileOutcome> out(files.size());
  std::atomic<size_t> next{0}, done{0};
  std::atomic<uint64_t> done_bytes{0};
  std::exception_ptr fatal;
  std::mutex mu;
  std::condition_variable cv;
  uint64_t total_bytes = 0;
  for (const auto& f : files) total_bytes += f.size;
  auto worker = [&] {
    InterruptScope interruptible("ingest");  // a signal stops even one huge file's tokenizing within a second
    for (size_t i; (i = next++) < files.size();) {
      if (interrupt_requested()) break;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (fatal) break;
      }
      try {
        auto it = old.find(files[i].path.string());
        out[i] = file_process(files[i], it == old.end() ? nullptr : it->second, ctx);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!fatal) fatal = std::current_exception();
      }
      done_bytes += files[i].size;
      ++done;
      cv.notify_one();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  {
    std::unique_ptr<Progress> bar;
    if (progress) bar = std::make_unique<Progress>("ingest", files.size(), "files");
    auto draw = [&] {
      if (bar) bar->update(done, fmt::format("{:.1f}/{:.1f} MB", done_bytes / 1e6, total_bytes / 1e6));
    };
    std::unique_lock<std::mutex> lock(mu);
    while (done < files.size() && !fatal && !interrupt_requested()) {
      cv.wait_for(lock, std::chrono::milliseconds(100));
      draw();
    }
    draw();
  }
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);
  interrupt_check("ingest");
  return out;
}

void issues_log(const std::vector<FileOutcome>& outcomes) {
  for (const auto& o : outcomes) {
    if (o.status == FileStatus::kUnchanged) continue;
    for (const auto& i : o.entry.issues) {
      if (i.line > 0) log::warn("{}:{}: {} (skipped)", o.entry.path, i.line, i.reason);
      else log::warn("{}: {} (skipped)", o.entry.path, i.reason);
    }
    if (!o.entry.skipped.empty() && o.entry.issues.empty()) log::info("{}: skipped: {}", o.entry.path, o.entry.skipped);
  }
}

void strict_check(const std::vector<FileOutcome>& outcomes) {
  for (const auto& o : outcomes) {
    if (o.entry.issues.empty()) continue;
    const Issue& i = o.entry.issues.front();
    std::string where = i.line > 0 ? fmt::format("{}:{}", o.entry.path, i.line) : o.entry.path;
    std::string msg = fmt::format("{}: {} (--strict)", where, i.reason);
    if (i.reason.rfind(kUnreadable, 0) == 0) throw IoError(msg);
    throw FormatError(msg);
  }
}

// Every file yielded nothing (or there were none): an error, so that a cron job notices, and the previous
// dataset stays as it was.
void nothing_check(const std::vector<FileOutcome>& outcomes) {
  std::string list;
  size_t n = 0;
  for (const auto& o : outcomes) {
    if (o.entry.skipped.empty()) return;
    if (++n <= 5) list += fmt::format("{}{} ({})", n > 1 ? "; " : "", o.entry.path, o.entry.skipped);
  }
  if (n > 5) list += fmt::format("; and {} more", n - 5);
  throw FormatError(n == 0 ? std::string("ingest: no files under the sources; expected files to read")
                           : fmt::format("ingest: none of the {} files yielded anything to train on: {}", n, list));
}

bool all_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
  });
}
bool all_digits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

// Whether `name` (an entry of the dataset folder, or of its cache/ when `in_cache`) is one ingest writes:
// manifest.json, .lock, cache/, {train,validation}-GGGGGG-NNNNN.shard, tokenizer-<16 hex>, cache/<64 hex>.zst,
// or a temporary of one of these ("<name>.tmp.<pid>.<hex>", AtomicWriter's). Only these are ever deleted.
bool dataset_entry(std::string_view name, bool in_cache) {
  if (auto t = name.find(".tmp."); t != std::string_view::npos) name = name.substr(0, t);
  if (in_cache) return name.size() == 68 && name.substr(64) == ".zst" && all_hex(name.substr(0, 64));
  if (name == "manifest.json" || name == ".lock" || name == "cache") return true;
  if (name.size() == 26 && name.substr(0, 10) == "tokenizer-") return all_hex(name.substr(10));
  for (std::string_view split : {"train-", "validation-"}) {
    if (name.substr(0, split.size()) != split) continue;
    std::string_view rest = name.substr(split.size());  // GGGGGG-NNNNN.shard
    return rest.size() == 18 && rest.substr(12) == ".shard" && rest[6] == '-' && all_digits(rest.substr(0, 6)) &&
           all_digits(rest.substr(7, 5));
  }
  return false;
}

// Deletes what the committed manifest no longer references: old shards, caches, tokenizer copies, and
// temporaries of crashed runs. Failures are only logged: the dataset is already consistent.
void garbage_collect(const fs::path& dir, const Manifest& m) {
  std::set<std::string> keep;
  for (const auto* split : {&m.train, &m.validation})
    for (const auto& s : split->shards) keep.insert(s.file);
  for (const auto& e : m.sources)
    if (!e.cache.empty()) keep.insert(e.cache);
  keep.insert(m.tokenizer.value("dir", ""));
  std::error_code ec;
  auto sweep = [&](const fs::path& folder, const std::string& prefix) {
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      std::string name = entry.path().filename().string();
      const bool ours = dataset_entry(name, !prefix.empty()) && name != "cache" && name != ".lock";
      if (!ours || keep.count(prefix + name) || name == "manifest.json") continue;
      io::remove_tree(entry.path(), ec);
      if (ec) log::warn("{}: cannot remove: {}", entry.path().string(), ec.message());
    }
  };
  sweep(dir, "");
  if (fs::exists(dir / "cache")) sweep(dir / "cache", "cache/");
}

// Nothing changed and the same options: keep the shards in use. Otherwise pack a new generation.
void pack_or_reuse(bool reuse, const Manifest& old, const PackSettings& settings, Manifest& m) {
  if (!reuse) {
    m.generation = settings.generation;
    packing_run(settings, m);
    return;
  }
  m.generation = old.generation;
  m.train = old.train;
  m.validation = old.validation;
  m.totals = totals_compute(m, old.totals.value("truncated", uint64_t(0)));
}

IngestResult changes_count(const std::vector<FileOutcome>& outcomes, const Manifest& old) {
  IngestResult result;
  std::set<std::string> seen;
  for (const auto& oc : outcomes) {
    seen.insert(oc.entry.path);
    result.bytes_processed += oc.bytes_read;
    if (oc.status == FileStatus::kAdded) ++result.added;
    else if (oc.status == FileStatus::kChanged) ++result.changed;
    else ++result.unchanged;
  }
  for (const auto& e : old.sources) result.removed += seen.count(e.path) ? 0 : 1;
  return result;
}

json tokenizer_json(const tokenizer::Tokenizer& tok, const fs::path& model_dir, const std::string& copy_dir,
                    const std::string& fingerprint) {
  return {{"fingerprint", fingerprint},
          {"model_dir", fs::absolute(model_dir).lexically_normal().string()},
          {"dir", copy_dir},
          {"vocab_size", tok.vocab_size()},
          {"bos_id", tok.bos_id() ? json(*tok.bos_id()) : json(nullptr)},
          {"eos_id", *tok.eos_id()}};
}

// The commit point: makes the caches (written without an fsync each) and shards durable with one syncfs of
// the dataset's filesystem, then replaces manifest.json atomically.
void manifest_commit(const fs::path& out_dir, const Manifest& m) {
  int dir_fd = ::open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::syncfs(dir_fd);
    ::close(dir_fd);
  }
  io::atomic_write(out_dir / "manifest.json", manifest_to_json(m).dump(1));
}

}  // namespace

int64_t seq_len_default(const fs::path& model_dir) {
  int64_t n = 2048;
  fs::path cfg = model_dir / "config.json";
  if (fs::exists(cfg)) {
    json c = io::json_read(cfg);
    if (c.contains("max_position_embeddings") && c["max_position_embeddings"].is_number_integer())
      n = std::min<int64_t>(n, c["max_position_embeddings"].get<int64_t>());
  }
  return n;
}

void ingest_options_validate(const IngestOptions& o) {
  if (o.sources.empty()) throw ConfigError("SOURCE: expected at least one file or folder");
  if (!fs::is_directory(o.model_dir))
    throw IoError(
        fmt::format("--model: '{}' is not a directory; expected a model or tokenizer folder", o.model_dir.string()));
  if (!fs::exists(o.model_dir / "tokenizer.json"))
    throw IoError(fmt::format("--model: '{}' has no tokenizer.json", o.model_dir.string()));
  if (o.out_dir.empty()) throw ConfigError("--out: expected a dataset folder");
  if (fs::exists(o.out_dir) && !fs::is_directory(o.out_dir))
    throw ConfigError(fmt::format("--out: '{}' exists and is not a folder", o.out_dir.string()));
  // A folder holding anything ingest does not write is someone's folder, not a dataset: refuse it unless --force
  // (and even then only ingest's own files are ever replaced or removed).
  if (fs::is_directory(o.out_dir) && !fs::exists(o.out_dir / "manifest.json") && !o.force) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(o.out_dir, ec))
      if (!dataset_entry(e.path().filename().string(), false))
        throw ConfigError(fmt::format(
            "--out: '{}' is not a hearth dataset and holds other files (e.g. '{}'); choose an empty or new folder, "
            "or pass --force to write the dataset beside them (they are never modified)",
            o.out_dir.string(), e.path().filename().string()));
  }
  if (o.seq_len < 0 || (o.seq_len > 0 && o.seq_len < 16) || o.seq_len > (1 << 20))
    throw ConfigError(fmt::format("--seq-len: expected 16..1048576, got {}", o.seq_len));
  if (!(o.val_fraction >= 0 && o.val_fraction < 1))
    throw ConfigError(fmt::format("--val-fraction: expected a number in [0, 1), got {}", o.val_fraction));
  if (!(o.near_dup_threshold > 0 && o.near_dup_threshold <= 1))
    throw ConfigError(fmt::format("--near-dup-threshold: expected a number in (0, 1], got {}", o.near_dup_threshold));
  if (o.threads < 0) throw ConfigError(fmt::format("--threads: expected a positive number, got {}", o.threads));
  if (o.shard_tokens < 1024) throw ConfigError(fmt::format("--shard-tokens: expected >= 1024, got {}", o.shard_tokens));
  if (o.format != "auto") format_parse(o.format, "--format");
  for (const auto& name : o.me)
    if (name.find_first_not_of(" \t") == std::string::npos)
      throw ConfigError("--me: expected your name as the chat export shows it, got an empty name");
}

IngestResult ingest_run(const IngestOptions& o) {
  auto t0 = std::chrono::steady_clock::now();
  ingest_options_validate(o);
  auto stage = [&](const char* s) {
    log::debug("ingest: stage {} at {:.3f} s", s,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (o.on_stage) o.on_stage(s);
  };
  fs::path out_dir = fs::absolute(o.out_dir).lexically_normal();
  fs::create_directories(out_dir / "cache");
  DirLock lock(out_dir);

  std::string fingerprint = tokenizer_fingerprint(o.model_dir);
  int64_t seq_len = o.seq_len > 0 ? o.seq_len : seq_len_default(o.model_dir);
  // The tokenizer loads on its own thread: reading, extracting, cleaning and redacting files need none of it,
  // so its load (~0.35 s for Llama 3's 9 MB tokenizer.json) overlaps with that work. `loaded` is declared
  // after what it fills, so unwinding waits for the load before destroying them.
  std::optional<tokenizer::Tokenizer> tok;
  std::optional<RecordEncoder> encoder;
  std::shared_future<void> loaded = std::async(std::launch::async, [&] {
                                      tok.emplace(tokenizer::Tokenizer::load(o.model_dir));
                                      encoder.emplace(*tok, (o.model_dir / "tokenizer_config.json").string(),
                                                      o.train_on, seq_len);
                                    }).share();
  auto encoder_ready = [&loaded, &encoder]() -> const RecordEncoder& {
    loaded.get();  // rethrows a load failure
    return *encoder;
  };

  Manifest old;
  bool have_old = fs::exists(out_dir / "manifest.json");
  if (have_old) old = manifest_read(out_dir);
  std::map<std::string, const SourceEntry*> old_by_path;
  for (const auto& e : old.sources) old_by_path[e.path] = &e;

  WalkOptions walk{o.include, o.exclude, out_dir, o.follow_symlinks};
  stage("loaded");
  std::vector<SourceFile> files = sources_walk(o.sources, walk);
  log::info("ingest: {} files under {} source(s) -> {}", files.size(), o.sources.size(), out_dir.string());

  IngestOptions effective = o;
  effective.out_dir = out_dir;
  FileContext ctx{effective, encoder_ready, std::nullopt, processing_key(o, fingerprint, seq_len), false};
  if (o.format != "auto") ctx.forced_format = format_parse(o.format, "--format");
  ctx.key_unchanged = have_old && old.processing_key == ctx.processing_key;
  if (have_old && !ctx.key_unchanged) log::info("ingest: settings or tokenizer changed; every file is processed again");
  int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<FileOutcome> outcomes = files_process(files, old_by_path, ctx, threads, o.progress);
  loaded.get();  // the tokenizer is needed below even when every file came from the cache
  issues_log(outcomes);
  if (o.strict) strict_check(outcomes);
  nothing_check(outcomes);
  stage("files_done");

  IngestResult result = changes_count(outcomes, old);

  Manifest m;
  m.seq_len = seq_len;
  m.processing_key = ctx.processing_key;
  m.options = options_json(o, seq_len);
  for (auto& oc : outcomes) m.sources.push_back(std::move(oc.entry));
  bool reuse = have_old && ctx.key_unchanged && old.options == m.options &&
               result.added + result.changed + result.removed == 0;
  pack_or_reuse(reuse, old,
                PackSettings{out_dir, seq_len, o.val_fraction, o.near_dedup, o.near_dup_threshold, o.shard_tokens,
                             old.generation + 1},
                m);
  stage("shards_written");
  m.tokenizer = tokenizer_json(*tok, o.model_dir, tokenizer_copy(o.model_dir, out_dir, fingerprint), fingerprint);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.last_run = {{"finished_at", utc_now()},      {"added", result.added},
                {"changed", result.changed},     {"removed", result.removed},
                {"unchanged", result.unchanged}, {"bytes_read", result.bytes_processed},
                {"seconds", result.seconds},     {"threads", threads}};
  manifest_commit(out_dir, m);
  stage("committed");
  garbage_collect(out_dir, m);
  result.manifest = std::move(m);
  return result;
}

}  // namespace hearth::data
