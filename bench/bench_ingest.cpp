// bench_ingest: end-to-end `hearth ingest` throughput (read, extract, clean, redact, dedup, tokenize, pack,
// compress, write) on a generated corpus of personal-style notes, mail and chat exports.
//
//   bench_ingest [TOKENIZER_DIR=build/test-assets/llama3] [MEGABYTES=16] [THREADS=0 (all cores)]
//
// Writes the corpus under $TMPDIR, ingests it from scratch with 1 thread and with THREADS threads, then once
// more with nothing changed (the incremental no-op). Prints MB/s of source text for each run. Deterministic
// input (fixed seed): 85% Markdown/text notes (2-40 KB, paragraphs), 10% chat JSONL, 5% mbox. "CPU s" is the
// process's user+system time for the run: MB per CPU-second does not depend on what else the machine runs.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "data/ingest.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kWords = {
    "the",     "garden",   "morning",  "bread",      "walked",    "to",       "market",  "and",        "bought",
    "oranges", "tomatoes", "basil",    "we",         "should",    "remember", "call",    "Mira",       "about",
    "compost", "meeting",  "release",  "checklist",  "owner",     "flaky",    "test",    "rain",       "coast",
    "train",   "harbour",  "seals",    "binoculars", "lentil",    "soup",     "lemon",   "cumin",      "it's",
    "don't",   "I'll",     "2024",     "3.5",        "km",        "(maybe)",  "e-mail",  "café",       "naïve",
    "quickly", "because",  "however,", "although",   "river",     "map",      "letters", "lighthouse", "keeper",
    "slow",    "sudden",   "kitchen",  "cellar",     "hydration", "crust",    "bike",    "chain",      "brake",
    "pads",    "drawer",   "stairs",   "piano"};

std::string sentence(std::mt19937& rng) {
  std::string s;
  int n = 6 + static_cast<int>(rng() % 14);
  for (int i = 0; i < n; ++i) {
    std::string w = kWords[rng() % kWords.size()];
    if (i == 0) w[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
    s += w + (i + 1 < n ? " " : ". ");
  }
  return s + std::to_string(rng() % 100000) + " ";  // keeps documents distinct
}

std::string paragraphs(std::mt19937& rng, size_t bytes) {
  std::string s;
  while (s.size() < bytes) {
    for (int k = 0, n = 2 + static_cast<int>(rng() % 5); k < n; ++k) s += sentence(rng);
    s += "\n\n";
  }
  return s;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

// Writes ~megabytes of corpus under dir; returns the bytes written.
size_t corpus_write(const fs::path& dir, size_t megabytes) {
  std::mt19937 rng(1234);
  size_t total = 0, target = megabytes << 20;
  for (int i = 0; total < target; ++i) {
    std::string body, name;
    unsigned kind = rng() % 20;
    if (kind < 17) {
      name = "notes/" + std::to_string(i % 37) + "/note-" + std::to_string(i) + (kind % 2 ? ".md" : ".txt");
      body = "# Note " + std::to_string(i) + "\n\n" + paragraphs(rng, 2000 + rng() % 38000);
    } else if (kind < 19) {
      name = "chats/export-" + std::to_string(i) + ".jsonl";
      for (int c = 0; c < 40; ++c)
        body += "{\"messages\": [{\"role\": \"user\", \"content\": \"" + json_escape(sentence(rng)) +
                "\"}, {\"role\": \"assistant\", \"content\": \"" + json_escape(paragraphs(rng, 300)) + "\"}]}\n";
    } else {
      name = "mail/box-" + std::to_string(i) + ".mbox";
      for (int m = 0; m < 20; ++m)
        body += "From a@example.com Mon Jan  1 00:00:00 2024\nSubject: s\nContent-Type: text/plain; charset=utf-8\n\n" +
                paragraphs(rng, 800) + "\n> quoted line\n\n-- \nsig\n\n";
    }
    fs::create_directories((dir / name).parent_path());
    std::ofstream(dir / name, std::ios::binary) << body;
    total += body.size();
  }
  return total;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double run(const fs::path& src, const fs::path& out, const fs::path& model, int threads, bool fresh,
           hearth::data::IngestResult* result) {
  if (fresh) fs::remove_all(out);
  hearth::data::IngestOptions o;
  o.sources = {src};
  o.model_dir = model;
  o.out_dir = out;
  o.threads = threads;
  o.progress = false;
  auto t0 = Clock::now();
  double c0 = cpu_seconds();
  *result = hearth::data::ingest_run(o);
  result->bytes_processed = static_cast<uint64_t>((cpu_seconds() - c0) * 1e6);  // CPU microseconds, for the table
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  fs::path model = argc > 1 ? fs::path(argv[1]) : fs::path(HEARTH_TEST_ASSETS_DIR) / "llama3";
  size_t mb = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 16;
  int threads = argc > 3 ? std::atoi(argv[3]) : 0;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  hearth::log::set_level(std::getenv("HEARTH_BENCH_DEBUG") ? hearth::log::Level::kDebug : hearth::log::Level::kWarn);
  try {
    fs::path base = fs::temp_directory_path() / ("hearth_bench_ingest_" + std::to_string(::getpid()));
    fs::path src = base / "src", out = base / "out";
    size_t bytes = corpus_write(src, mb);
    std::printf("corpus: %.1f MB of notes/chats/mail, tokenizer %s, %u hardware threads\n", bytes / 1e6,
                model.string().c_str(), std::thread::hardware_concurrency());
    std::printf("%-28s %8s %9s %10s %9s %12s %11s\n", "run", "threads", "seconds", "MB/s", "CPU s", "MB/CPU-s",
                "tokens");
    hearth::data::IngestResult r;
    auto row = [&](const char* name, int t, double s) {
      uint64_t tokens = r.manifest.train.tokens + r.manifest.validation.tokens;
      double cpu = r.bytes_processed / 1e6;
      std::printf("%-28s %8d %9.2f %10.1f %9.2f %12.1f %11llu\n", name, t, s, bytes / 1e6 / s, cpu, bytes / 1e6 / cpu,
                  static_cast<unsigned long long>(tokens));
    };
    row("fresh ingest", 1, run(src, out, model, 1, true, &r));
    row("fresh ingest", threads, run(src, out, model, threads, true, &r));
    row("re-run, nothing changed", threads, run(src, out, model, threads, false, &r));
    fs::remove_all(base);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_ingest: %s\n", e.what());
    return 1;
  }
  return 0;
}
