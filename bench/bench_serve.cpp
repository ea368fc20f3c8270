// bench_serve: load generator for `hearth serve` — aggregate tokens/s, time to first token (TTFT) and
// inter-token latency (ITL, p50/p99) at several numbers of concurrent streams, and the ratio of aggregate
// throughput at the most streams to one stream (what continuous batching buys).
//
//   build/apps/hearth serve --model MODEL_DIR --max-batch 16 --port 8080 &
//   build/bench/bench_serve --port 8080 [--streams 1,4,16] [--seconds 20] [--max-tokens 64] [--prompt TEXT]
// Each stream sends streamed /v1/completions requests back to back (greedy, fixed length unless the model
// stops) for --seconds; the tokens per request come from the server's usage chunk, the token times from the
// SSE events' arrival. Talks only to 127.0.0.1. bench/README.md has the numbers and how they were taken.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <httplib.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double since(Clock::time_point t0, Clock::time_point t) { return std::chrono::duration<double>(t - t0).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

struct Sample {
  std::vector<double> ttft, itl;
  size_t tokens = 0, requests = 0, errors = 0;
};

struct Options {
  int port = 8080;
  std::string model, prompt = "Once upon a time, in a small village by the sea, there lived";
  std::string api_key;
  std::vector<int> streams = {1, 4, 16};
  double seconds = 20;
  int max_tokens = 64;
};

// One streamed request; appends its TTFT, ITLs and token count to `out`.
void one_request(httplib::Client& c, const Options& o, Sample& out) {
  json body = {{"model", o.model}, {"prompt", o.prompt}, {"max_tokens", o.max_tokens},
               {"temperature", 0}, {"stream", true},     {"stream_options", {{"include_usage", true}}}};
  std::string buf;
  size_t tokens = 0;
  auto t0 = Clock::now(), last = t0;
  bool first = true;
  std::vector<double> itl;
  double ttft = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  if (!o.api_key.empty()) req.set_header("Authorization", "Bearer " + o.api_key);
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
    buf.append(d, n);
    size_t at;
    while ((at = buf.find("\n\n")) != std::string::npos) {
      std::string ev = buf.substr(0, at);
      buf.erase(0, at + 2);
      if (ev.rfind("data: {", 0) != 0) continue;
      auto j = json::parse(ev.substr(6));
      if (j.contains("usage") && j["usage"].is_object()) tokens = j["usage"]["completion_tokens"];
      if (j["choices"].empty() || j["choices"][0]["text"].get<std::string>().empty()) continue;
      auto now = Clock::now();
      if (first) ttft = since(t0, now);
      else itl.push_back(since(last, now));
      first = false;
      last = now;
    }
    return true;
  };
  auto res = c.send(req);
  if (!res || res->status != 200 || tokens == 0) {
    ++out.errors;
    std::cerr << "bench_serve: request failed: "
              << (!res                 ? "transport error " + httplib::to_string(res.error())
                  : res->status != 200 ? "HTTP " + std::to_string(res->status) + " " + res->body
                                       : std::string("no usage in the stream: ") + buf.substr(0, 200))
              << std::endl;
    return;
  }
  out.ttft.push_back(ttft);
  out.itl.insert(out.itl.end(), itl.begin(), itl.end());
  out.tokens += tokens;
  ++out.requests;
}

// `n` streams for o.seconds; returns {aggregate tokens/s, merged samples}.
std::pair<double, Sample> run_level(const Options& o, int n) {
  std::vector<Sample> samples(n);
  auto t0 = Clock::now();
  auto end = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", o.port);
      c.set_read_timeout(600, 0);
      for (int k = 0; k < 100000 && Clock::now() < end; ++k) one_request(c, o, samples[i]);
    });
  for (auto& t : threads) t.join();
  double wall = since(t0, Clock::now());
  Sample all;
  for (auto& s : samples) {
    all.ttft.insert(all.ttft.end(), s.ttft.begin(), s.ttft.end());
    all.itl.insert(all.itl.end(), s.itl.begin(), s.itl.end());
    all.tokens += s.tokens;
    all.requests += s.requests;
    all.errors += s.errors;
  }
  return {all.tokens / wall, all};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Load generator for hearth serve (127.0.0.1 only)"};
  app.add_option("--port", o.port, "Port of the running `hearth serve` on 127.0.0.1");
  app.add_option("--model", o.model, "Model name (default: the first one /v1/models lists)");
  app.add_option("--streams", o.streams, "Concurrent stream counts to measure (default 1,4,16)")->delimiter(',');
  app.add_option("--seconds", o.seconds, "Seconds per level (default 20)");
  app.add_option("--max-tokens", o.max_tokens, "Tokens per request (default 64)");
  app.add_option("--prompt", o.prompt, "Prompt text");
  app.add_option("--api-key", o.api_key, "Bearer key, if the server needs one");
  CLI11_PARSE(app, argc, argv);
  httplib::Client c("127.0.0.1", o.port);
  if (!o.api_key.empty()) c.set_bearer_token_auth(o.api_key.c_str());
  auto models = c.Get("/v1/models");
  if (!models || models->status != 200) {
    std::cerr << "bench_serve: no hearth serve answering on 127.0.0.1:" << o.port << std::endl;
    return 1;
  }
  if (o.model.empty()) o.model = json::parse(models->body)["data"][0]["id"];
  one_request(c, o, *std::make_unique<Sample>());  // warm-up
  std::cout << fmt::format(
      "| streams | requests | errors | aggregate tok/s | TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms |\n"
      "| --- | --- | --- | --- | --- | --- | --- | --- |\n");
  json results = json::array();
  double first_tps = 0, last_tps = 0;
  for (int n : o.streams) {
    auto [tps, s] = run_level(o, n);
    if (results.empty()) first_tps = tps;
    last_tps = tps;
    std::cout << fmt::format("| {} | {} | {} | {:.1f} | {:.0f} | {:.0f} | {:.1f} | {:.1f} |\n", n, s.requests, s.errors,
                             tps, 1e3 * percentile(s.ttft, 50), 1e3 * percentile(s.ttft, 99),
                             1e3 * percentile(s.itl, 50), 1e3 * percentile(s.itl, 99))
              << std::flush;
    results.push_back({{"streams", n},
                       {"tokens_per_s", tps},
                       {"requests", s.requests},
                       {"errors", s.errors},
                       {"ttft_p50_s", percentile(s.ttft, 50)},
                       {"ttft_p99_s", percentile(s.ttft, 99)},
                       {"itl_p50_s", percentile(s.itl, 50)},
                       {"itl_p99_s", percentile(s.itl, 99)}});
  }
  if (o.streams.size() > 1 && first_tps > 0)
    std::cout << fmt::format("\naggregate throughput, {} streams / {} stream: {:.2f}×\n", o.streams.back(),
                             o.streams.front(), last_tps / first_tps);
  std::cout << json{{"model", o.model}, {"max_tokens", o.max_tokens}, {"levels", results}}.dump() << std::endl;
  return 0;
}
