// bench_tokenizer: encode/decode throughput of hearth's tokenizer on a few MB of generated, varied text.
//
//   bench_tokenizer TOKENIZER_DIR [MEGABYTES=4] [THREADS=1]
//
// TOKENIZER_DIR holds tokenizer.json (e.g. build/test-assets/llama3, models/stories260K). Prints one table
// row per text kind: MB/s for encode (cold word cache, then warm), tokens per byte, MB/s for decode. With
// THREADS > 1 also encodes with that many threads sharing the tokenizer. Deterministic input (fixed seed).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace tok = hearth::tokenizer;

// Roughly `bytes` of text of one kind, from a fixed seed.
std::string make_text(const std::string& kind, size_t bytes) {
  static const std::vector<std::string> english = {
      "the",     "a",         "little",     "girl",      "named",    "Lily",  "loved", "to",    "play",
      "outside", "in",        "park",       "one",       "day",      "she",   "saw",   "big",   "red",
      "ball",    "tokenizer", "throughput", "benchmark", "however,", "don't", "it's",  "We'll", "1984",
      "3.14159", "(see",      "below)",     "e-mail",    "naïve",    "café"};
  static const std::vector<std::string> code = {"for (int i = 0; i < n; ++i) {",
                                                "  sum += a[i] * b[i];",
                                                "}",
                                                "def f(x):",
                                                "    return x ** 2",
                                                "    if not x:",
                                                "        raise ValueError(\"empty\")",
                                                "#include <vector>",
                                                "// comment",
                                                "\treturn 0;"};
  static const std::vector<std::string> cjk = {"你好", "世界", "我想在", "工作", "日本語", "テキスト", "한국어",
                                               "。",   "，",   "🦙",   "😀",    "✅",      " "};
  std::mt19937 rng(42);
  std::string out;
  while (out.size() < bytes) {
    if (kind == "english") {
      out += english[rng() % english.size()];
      out += (rng() % 12 == 0) ? ".\n" : " ";
    } else if (kind == "code") {
      out += code[rng() % code.size()];
      out += "\n";
    } else if (kind == "cjk+emoji") {
      out += cjk[rng() % cjk.size()];
    } else {  // mixed
      out += make_text((rng() % 3 == 0) ? "code" : (rng() % 2 ? "english" : "cjk+emoji"), 200);
    }
  }
  return out;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Encodes `text` in chunks of ~4 KB (as a server or data pipeline would), appending ids.
std::vector<tok::TokenId> encode_chunks(const tok::Tokenizer& t, const std::string& text) {
  std::vector<tok::TokenId> ids;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = std::min(text.size(), pos + 4096);
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    const auto part = t.encode(std::string_view(text).substr(pos, end - pos), {false, true});
    ids.insert(ids.end(), part.begin(), part.end());
    pos = end;
  }
  return ids;
}

void bench_kind(const tok::Tokenizer& t, const std::string& kind, size_t bytes, int threads) {
  const std::string text = make_text(kind, bytes);
  const double mb = static_cast<double>(text.size()) / 1e6;
  auto start = Clock::now();
  const auto ids = encode_chunks(t, text);
  const double cold = seconds_since(start);
  start = Clock::now();
  encode_chunks(t, text);
  const double warm = seconds_since(start);
  start = Clock::now();
  const std::string decoded = t.decode(ids);
  const double dec = seconds_since(start);
  double par = 0;
  if (threads > 1) {
    start = Clock::now();
    std::vector<std::thread> pool;
    for (int k = 0; k < threads; ++k) pool.emplace_back([&] { encode_chunks(t, text); });
    for (auto& th : pool) th.join();
    par = mb * threads / seconds_since(start);
  }
  const std::string par_text = threads > 1 ? std::to_string(static_cast<int>(par)) : "-";
  std::printf("%-10s %8.2f %12.1f %12.1f %10.3f %12.1f %14s\n", kind.c_str(), mb, mb / cold, mb / warm,
              static_cast<double>(ids.size()) / static_cast<double>(text.size()), mb / dec, par_text.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TOKENIZER_DIR [MEGABYTES=4] [THREADS=1]\n", argv[0]);
    return 2;
  }
  const double megabytes = argc > 2 ? std::atof(argv[2]) : 4.0;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 1;
  try {
    const auto start = Clock::now();
    const auto t = tok::Tokenizer::load(argv[1]);
    std::printf("%s\nloaded in %.2f s\n\n", t.summary().c_str(), seconds_since(start));
    std::printf("%-10s %8s %12s %12s %10s %12s %14s\n", "text", "MB", "enc MB/s", "warm MB/s", "tok/byte", "dec MB/s",
                ("x" + std::to_string(threads) + " MB/s").c_str());
    const auto bytes = static_cast<size_t>(megabytes * 1e6 / 4);
    for (const char* kind : {"english", "code", "cjk+emoji", "mixed"}) bench_kind(t, kind, bytes, threads);
  } catch (const hearth::Error& e) {
    std::fprintf(stderr, "bench_tokenizer: %s\n", e.what());
    return static_cast<int>(e.exit_code());
  }
  return 0;
}
