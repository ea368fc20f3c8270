// Data-parallel finetune-lora end to end on 127.0.0.1 with Gloo: two workers compute what one process computes
// with the same global batch (losses, adapter); a worker killed with -9 or stopped makes the other exit 6 within
// the timeout, and the run resumes; SIGTERM to the launcher checkpoints and stops every worker; a run goes on with
// fewer workers from the global data position; the lock still holds one job per run directory.
#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "finetune_fixture.h"
#include "io/json_file.h"
#include "model/checkpoint.h"
#include "train/launch.h"

using namespace hearth;
using test::quote;
using test::run_hearth;
namespace fs = std::filesystem;

namespace {

fs::path work() { return test::scratch("data_parallel"); }

// A small dataset of story-like text, ingested with the bundled model's tokenizer (once per process). Stories of
// different lengths: micro-batches pad differently.
fs::path dataset() {
  static fs::path dir = test::story_dataset(work(), 11, 24, 96, [](int f) { return 1 + f % 5; });
  return dir;
}

// Dropout on, so that equal results need equal random streams; eval every 3 steps (sharded over the workers).
fs::path recipe() {
  return test::stories_recipe(
      work(), dataset(), "q, v, o, gate, down",
      "optimizer: {lr: 3.0e-3, weight_decay: 0.01}\n"
      "schedule: {type: cosine, warmup_steps: 2}\n"
      "training: {micro_batch_size: 2, gradient_accumulation_steps: 2, max_steps: 10, seed: 5}\n"
      "eval: {every: 3}\ncheckpoint: {every: 1, keep_last: 2}\n");
}

std::string finetune_args(const fs::path& run, const std::string& extra = "") {
  return test::finetune_args(recipe(), run, extra);
}

std::vector<double> metric(const fs::path& run, const std::string& key) { return test::metric_values(run, key); }

std::map<std::string, torch::Tensor> adapter(const fs::path& run) {
  return model::safetensors_tensors(run / "adapters" / "latest" / "adapter_model.safetensors");
}

double adapter_max_diff(const fs::path& a, const fs::path& b) {
  auto x = adapter(a), y = adapter(b);
  REQUIRE(x.size() == y.size());
  double worst = 0;
  for (const auto& [name, t] : x) {
    REQUIRE(y.count(name) == 1);
    worst = std::max(worst, (t - y.at(name)).abs().max().item<double>());
  }
  return worst;
}

void check_same_losses(const fs::path& a, const fs::path& b, const std::string& key, size_t n) {
  auto x = metric(a, key), y = metric(b, key);
  REQUIRE(x.size() == n);
  REQUIRE(y.size() == n);
  for (size_t i = 0; i < n; ++i) CHECK(x[i] == Approx(y[i]).margin(1e-5).epsilon(0));
}

// Starts worker `rank` of 2 with torchrun's environment, as torchrun or a Slurm script would; its PID goes to
// DIR/pid<rank> and its exit code, when it ends, to DIR/rc<rank>.
void spawn_worker(int rank, int port, const std::string& args, const fs::path& dir) {
  const std::string r = std::to_string(rank);
  fs::remove(dir / ("pid" + r));
  fs::remove(dir / ("rc" + r));
  const std::string env = "RANK=" + r + " LOCAL_RANK=" + r +
                          " WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " ";
  std::string cmd = "( " + env + quote(test::hearth_binary()) + " " + args + " >" + quote(dir / ("w" + r + ".out")) +
                    " 2>" + quote(dir / ("w" + r + ".err")) + " & echo $! > " + quote(dir / ("pid.tmp" + r)) + "; mv " +
                    quote(dir / ("pid.tmp" + r)) + " " + quote(dir / ("pid" + r)) + "; wait $!; echo $? > " +
                    quote(dir / ("rc.tmp" + r)) + "; mv " + quote(dir / ("rc.tmp" + r)) + " " +
                    quote(dir / ("rc" + r)) + " ) &";
  std::system(cmd.c_str());
}

// The reference for the two-worker runs: one process, twice the accumulation (the same global batch of 8).
const fs::path& single_run() {
  static fs::path run = [] {
    fs::path r = work() / "run_single";
    auto res = run_hearth(finetune_args(r, "training.gradient_accumulation_steps=4"));
    INFO(res.err);
    REQUIRE(res.code == 0);
    return r;
  }();
  return run;
}

const fs::path& two_worker_run() {
  static fs::path run = [] {
    fs::path r = work() / "run_two";
    auto res = run_hearth("--json " + finetune_args(r, "--nproc-per-node 2"));
    INFO(res.err);
    REQUIRE(res.code == 0);
    auto j = nlohmann::json::parse(res.out);  // rank 0's result alone
    CHECK(j["world_size"] == 2);
    CHECK(j["steps"] == 10);
    return r;
  }();
  return run;
}

}  // namespace

TEST_CASE("data-parallel: 2 Gloo workers give the losses and adapter of one process with the same global batch",
          "[train][cli][distributed]") {
  check_same_losses(single_run(), two_worker_run(), "loss", 10);
  check_same_losses(single_run(), two_worker_run(), "eval_loss", 4);  // steps 3, 6, 9 and the final one
  CHECK(adapter_max_diff(single_run(), two_worker_run()) <= 1e-6);
  // The same data position: 10 global batches of 8 sequences.
  auto a = io::json_read(single_run() / "checkpoints" / "step-00000010" / "state.json");
  auto b = io::json_read(two_worker_run() / "checkpoints" / "step-00000010" / "state.json");
  CHECK(a["epoch"] == b["epoch"]);
  CHECK(a["epoch_offset"] == b["epoch_offset"]);
  CHECK(b["world_size"] == 2);
  CHECK(a["tokens_seen"] == b["tokens_seen"]);
  // And a global batch of 4 (one process, the recipe's accumulation) is another run: the comparison can fail.
  fs::path half = work() / "run_half";
  REQUIRE(run_hearth(finetune_args(half)).code == 0);
  CHECK(std::abs(metric(half, "loss")[3] - metric(two_worker_run(), "loss")[3]) > 1e-4);
}

TEST_CASE("data-parallel: kill -9 of one worker makes the other exit 6 within the timeout, and the run resumes",
          "[train][cli][distributed]") {
  fs::path run = work() / "run_kill";
  fs::remove_all(run);
  const int port = train::free_loopback_port();
  const std::string args = finetune_args(run, "--dist-timeout 20");
  spawn_worker(0, port, args, work());
  spawn_worker(1, port, args, work());
  REQUIRE(test::wait_for(work() / "pid1", 10));
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000003", 60));
  ::kill(test::read_int(work() / "pid1"), SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(test::wait_for(work() / "rc0", 25));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(waited < 20);
  CHECK(test::read_int(work() / "rc0") == 6);
  auto err = io::file_read(work() / "w0.err");
  CHECK(err.find("rank 0 of 2") != std::string::npos);
  CHECK(err.find("--dist-timeout") != std::string::npos);
  REQUIRE(test::wait_for(work() / "rc1", 10));
  CHECK(test::read_int(work() / "rc1") == 128 + SIGKILL);
  REQUIRE_FALSE(fs::exists(run / "adapters"));  // it really was cut short
  // Re-running resumes from rank 0's checkpoint and ends where the uninterrupted two-worker run ended.
  auto resumed = run_hearth("--json " + finetune_args(run, "--nproc-per-node 2"));
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(nlohmann::json::parse(resumed.out)["resumed"] == true);
  CHECK(adapter_max_diff(run, two_worker_run()) <= 1e-6);
}

TEST_CASE("data-parallel: a worker that hangs makes the other exit 6 after --dist-timeout",
          "[train][cli][distributed]") {
  fs::path run = work() / "run_hang";
  fs::remove_all(run);
  const int port = train::free_loopback_port();
  const std::string args = finetune_args(run, "training.max_steps=200 --dist-timeout 3");
  spawn_worker(0, port, args, work());
  spawn_worker(1, port, args, work());
  REQUIRE(test::wait_for(work() / "pid1", 10));
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000002", 60));
  const int hung = test::read_int(work() / "pid1");
  ::kill(hung, SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(test::wait_for(work() / "rc0", 20));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(waited >= 2.5);
  CHECK(test::read_int(work() / "rc0") == 6);
  CHECK(io::file_read(work() / "w0.err").find("Timed out") != std::string::npos);
  ::kill(hung, SIGKILL);
  ::kill(hung, SIGCONT);
  REQUIRE(test::wait_for(work() / "rc1", 10));
}

TEST_CASE("data-parallel: SIGTERM to the launcher checkpoints, stops every worker with 143, and the run resumes",
          "[train][cli][distributed]") {
  fs::path run = work() / "run_term";
  fs::remove_all(run);
  test::spawn_hearth(finetune_args(run, "--nproc-per-node 2"), work());
  REQUIRE(test::wait_for(work() / "pid", 10));
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000002", 60));
  ::kill(test::read_int(work() / "pid"), SIGTERM);
  REQUIRE(test::wait_for(work() / "rc", 30));
  CHECK(test::read_int(work() / "rc") == 143);
  REQUIRE_FALSE(fs::exists(run / "adapters"));
  auto err = io::file_read(work() / "bg.err");
  CHECK(err.find("stopped at step") != std::string::npos);
  // Both workers are gone (the lock is free) and the resumed run ends where the uninterrupted one did.
  auto resumed = run_hearth(finetune_args(run, "--nproc-per-node 2"));
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(adapter_max_diff(run, two_worker_run()) <= 1e-6);
}

TEST_CASE("data-parallel: a run trained by 2 workers goes on with 1 from the global data position",
          "[train][cli][distributed]") {
  // Reference: one process does the first 4 steps with the 2-worker global batch (accumulation 4), then goes on
  // with its own (accumulation 2). The 2-worker run does the first 4 steps, then one process goes on.
  fs::path ref = work() / "run_ref_21", run = work() / "run_21";
  fs::remove_all(ref);
  fs::remove_all(run);
  REQUIRE(run_hearth(finetune_args(ref, "training.max_steps=4 training.gradient_accumulation_steps=4")).code == 0);
  auto r2 = run_hearth(finetune_args(ref, "training.max_steps=8 --force"));
  INFO(r2.err);
  REQUIRE(r2.code == 0);
  REQUIRE(run_hearth(finetune_args(run, "training.max_steps=4 --nproc-per-node 2")).code == 0);
  auto r1 = run_hearth("--json " + finetune_args(run, "training.max_steps=8 --force"));
  INFO(r1.err);
  REQUIRE(r1.code == 0);
  CHECK(nlohmann::json::parse(r1.out)["resumed"] == true);
  CHECK(r1.err.find("trained by 2 worker(s) and goes on with 1") != std::string::npos);
  check_same_losses(ref, run, "loss", 8);
  CHECK(adapter_max_diff(ref, run) <= 1e-6);
  auto a = io::json_read(ref / "checkpoints" / "step-00000008" / "state.json");
  auto b = io::json_read(run / "checkpoints" / "step-00000008" / "state.json");
  CHECK(b["epoch_offset"] == a["epoch_offset"]);  // 4 × 8 + 4 × 4 sequences from the start
  CHECK(b["world_size"] == 1);
}

TEST_CASE("data-parallel: the lock holds one job per run directory, and worker setup errors exit 2",
          "[train][cli][distributed]") {
  fs::path run = work() / "run_lock";
  fs::remove_all(run);
  test::spawn_hearth(finetune_args(run, "training.max_steps=400 --nproc-per-node 2"), work());
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000002", 60));
  auto second = run_hearth(finetune_args(run, "training.max_steps=400 --nproc-per-node 2 --dist-timeout 20"));
  CHECK(second.code == 5);  // rank 0 of the second job cannot take the lock; its rank 1 exits 6
  CHECK(second.err.find("another run") != std::string::npos);
  ::kill(test::read_int(work() / "pid"), SIGTERM);
  REQUIRE(test::wait_for(work() / "rc", 30));
  CHECK(test::read_int(work() / "rc") == 143);

  auto nested = run_hearth(finetune_args(run, "--nproc-per-node 2"),
                           "WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=1");
  CHECK(nested.code == 2);
  CHECK(nested.err.find("--nproc-per-node") != std::string::npos);
  auto bad_rank = run_hearth(finetune_args(run), "WORLD_SIZE=2 RANK=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500");
  CHECK(bad_rank.code == 2);
  CHECK(bad_rank.err.find("RANK") != std::string::npos);
}
