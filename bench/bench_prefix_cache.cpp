// bench_prefix_cache: what serve's prefix cache buys — time to first token (TTFT) of a conversation's second turn,
// against its first turn and against the same turn with the cache off, and of another user's first turn that shares
// the system prompt; on a random-weight model (SmolLM2-135M shape by default), in process, through the scheduler
// that `hearth serve` runs (serve::Scheduler; no HTTP).
//
//   bench_prefix_cache [--preset smollm2-135m] [--threads 2] [--system 900] [--user 100] [--reply 64] [--next 40]
//                      [--repeats 3]
// Turn 1: a prompt of --system + --user random token ids, then --reply greedy tokens. Turn 2: turn 1's prompt, its
// reply and --next new ids (the next user message). "Shared system prompt": the same --system ids and another
// --user. TTFT is the engine's (the time_to_first_token histogram's sum, request submitted → first token sampled);
// the median of --repeats conversations, each with fresh random ids. bench/README.md has the numbers.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "bench/model_presets.h"
#include "model/causal_lm.h"
#include "model/config.h"
#include "serve/scheduler.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;

namespace {

struct Options {
  std::string preset = "smollm2-135m";
  int threads = 2, system = 900, user = 100, reply = 64, next = 40, repeats = 3;
};

// A metric's value in the Prometheus text ("name value" line).
double metric(const serve::Metrics& m, const std::string& name) {
  std::istringstream in(m.render());
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return 0;
}

struct Turn {
  double ttft = 0;
  int64_t prompt = 0, hit = 0;
  std::vector<infer::TokenId> reply;
};

// Runs one greedy request to its end; its TTFT, prompt-cache hits and reply ids.
Turn run(serve::Scheduler& sched, const serve::Metrics& metrics, const std::vector<infer::TokenId>& prompt, int reply) {
  const double ttft0 = metric(metrics, "hearth_time_to_first_token_seconds_sum");
  const double hit0 = metric(metrics, "hearth_prefix_cache_hit_tokens_total");
  serve::SequenceSpec spec;
  spec.request.prompt = prompt;
  spec.request.max_tokens = reply;
  spec.request.sampling.temperature = 0;
  spec.request.logprobs = 0;  // to get the reply's token ids back
  auto c = std::make_shared<serve::Completion>(1);
  if (!sched.submit(c, {spec})) throw std::runtime_error("queue full");
  Turn t;
  while (!c->done())
    for (const auto& u : c->take(std::chrono::milliseconds(100)))
      for (const auto& lp : u.logprobs) t.reply.push_back(lp.chosen.token);
  if (!c->error().empty()) throw std::runtime_error(c->error());
  while (metric(metrics, "hearth_time_to_first_token_seconds_sum") == ttft0)  // published after the step
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  t.ttft = metric(metrics, "hearth_time_to_first_token_seconds_sum") - ttft0;
  t.hit = static_cast<int64_t>(metric(metrics, "hearth_prefix_cache_hit_tokens_total") - hit0);
  t.prompt = static_cast<int64_t>(prompt.size());
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Time to first token of a conversation's 2nd turn with and without serve's prefix cache"};
  app.add_option("--preset", o.preset, "smollm2-135m | llama-3.2-1b | stories260k");
  app.add_option("--threads", o.threads);
  app.add_option("--system", o.system, "System prompt tokens (shared by every request)");
  app.add_option("--user", o.user, "First user message tokens");
  app.add_option("--reply", o.reply, "Reply tokens (greedy)");
  app.add_option("--next", o.next, "Second user message tokens");
  app.add_option("--repeats", o.repeats);
  CLI11_PARSE(app, argc, argv);
  // libgomp's threads sleep between ops unless OMP_NUM_THREADS is set before start (bench/README.md).
  if (!std::getenv("OMP_NUM_THREADS")) {
    setenv("OMP_NUM_THREADS", std::to_string(o.threads).c_str(), 1);
    execv("/proc/self/exe", argv);
  }
  at::set_num_threads(o.threads);
  try {
    c10::InferenceMode guard;
    auto config = model::config_parse(bench::preset_config(o.preset), o.preset);
    auto model = model::causal_lm_from_tensors(config, model::causal_lm_random_tensors(config, 1), {}, o.preset);
    auto tok = tokenizer::Tokenizer::load(std::string(HEARTH_SOURCE_DIR) + "/tests/fixtures/tokenizer-tests/gpt2");
    const int ctx = 2048;
    std::map<std::string, std::vector<double>> ttft;
    std::map<std::string, int64_t> prompt, hit;
    // One scheduler with the cache and one without, the conversations alternating between them (so that a change
    // in the machine's load weighs on both alike).
    std::array<serve::Metrics, 2> metrics_of;
    std::array<std::unique_ptr<serve::Scheduler>, 2> sched_of;
    for (int i = 0; i < 2; ++i) {
      serve::SchedulerOptions so;
      so.max_batch = 2;
      so.ctx = ctx;
      so.prefix_cache = i == 0;
      sched_of[i] = std::make_unique<serve::Scheduler>(*model, tok, so, &metrics_of[i]);
    }
    for (int r = 0; r < o.repeats; ++r)
      for (int i = 0; i < 2; ++i) {
        auto& sched = *sched_of[i];
        const auto& metrics = metrics_of[i];
        const std::string on = i == 0 ? "on" : "off";
        std::mt19937 rng(100 + r);
        std::uniform_int_distribution<infer::TokenId> id(3, static_cast<infer::TokenId>(config.vocab_size - 1));
        auto ids = [&](int n) {
          std::vector<infer::TokenId> v(n);
          for (auto& x : v) x = id(rng);
          return v;
        };
        const auto system = ids(o.system);
        auto p1 = system;
        for (auto x : ids(o.user)) p1.push_back(x);
        auto t1 = run(sched, metrics, p1, o.reply);
        auto p2 = p1;
        p2.insert(p2.end(), t1.reply.begin(), t1.reply.end());
        for (auto x : ids(o.next)) p2.push_back(x);
        auto t2 = run(sched, metrics, p2, o.reply);
        auto p3 = system;
        for (auto x : ids(o.user)) p3.push_back(x);
        auto t3 = run(sched, metrics, p3, o.reply);
        for (auto& [name, t] : std::vector<std::pair<std::string, Turn*>>{
                 {"turn 1", &t1}, {"turn 2", &t2}, {"another user, same system prompt", &t3}}) {
          ttft[name + "|" + on].push_back(t->ttft);
          prompt[name + "|" + on] = t->prompt;
          hit[name + "|" + on] = t->hit;
        }
      }
    std::cout << fmt::format("{} (random weights), float32, {} threads; median of {} conversations\n\n", o.preset,
                             o.threads, o.repeats);
    std::cout
        << "| request | prefix cache | prompt tokens | reused | prefilled | TTFT ms | × turn 1 (same cache setting) |\n";
    std::cout << "| --- | --- | --- | --- | --- | --- | --- |\n";
    for (const char* name : {"turn 1", "turn 2", "another user, same system prompt"})
      for (const char* on : {"off", "on"}) {
        const std::string k = std::string(name) + "|" + on;
        const double t = median(ttft[k]), turn1 = median(ttft[std::string("turn 1|") + on]);
        std::cout << fmt::format("| {} | {} | {} | {} | {} | {:.0f} | {:.2f}× |\n", name, on, prompt[k], hit[k],
                                 prompt[k] - hit[k], t * 1000, t / turn1);
      }
  } catch (const std::exception& e) {
    std::cerr << "bench_prefix_cache: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
