// The c10d wrapper (train/distributed.h) between two processes on 127.0.0.1: the test forks, the parent is rank 0
// and the child rank 1. Sums and broadcasts checked against values worked out by hand; a peer that dies makes
// the collective throw DistributedError at once; the torchrun variables are read and checked. `[gpu]`: NCCL on
// one CUDA device (world size 1), run on a GPU machine.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include "core/error.h"
#include "train/distributed.h"
#include "train/launch.h"

using namespace hearth;
using namespace hearth::train;

namespace {

// Runs `body(rank)` as rank 1 in a forked child (its exit code: 0 when body returned, 1 when it threw, 2 on a
// failed check) and as rank 0 here; returns the child's exit status.
int run_pair(const std::function<void(const DistEnv&)>& body) {
  DistEnv env;
  env.world_size = 2;
  env.master_port = train::free_loopback_port();
  pid_t pid = ::fork();
  if (pid == 0) {
    env.rank = env.local_rank = 1;
    int code = 0;
    try {
      body(env);
    } catch (const std::exception&) {
      code = 1;
    }
    ::_exit(code);
  }
  env.rank = 0;
  body(env);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

constexpr std::chrono::milliseconds kTimeout{20000};

}  // namespace

TEST_CASE("ProcessGroup: sums in buckets and broadcasts between 2 Gloo workers", "[train][distributed]") {
  at::set_num_threads(1);
  int child = run_pair([](const DistEnv& env) {
    ProcessGroup group(env, torch::kCPU, kTimeout);
    const double r = env.rank;
    // Four float32 tensors and a float64 one; 16-byte buckets split them into several collectives, the 10-float
    // one into pieces of 4, 4 and 2.
    std::vector<torch::Tensor> t = {torch::full({3}, 1.0f + float(r)), torch::arange(4, torch::kFloat32) * (r + 1),
                                    torch::full({2, 2}, 0.5f * float(r)),
                                    torch::full({1}, 1e-12 * (r + 1), torch::kFloat64),
                                    torch::arange(10, torch::kFloat32) * (r + 1)};
    group.all_reduce_sum(t, 16);
    // rank 0 + rank 1: (1+2), [0,1,2,3]·(1+2), 0.5·(0+1), 1e-12·(1+2) (float64 keeps it exactly), [0..9]·(1+2)
    bool ok = t[0].equal(torch::full({3}, 3.0f)) && t[1].equal(torch::arange(4, torch::kFloat32) * 3) &&
              t[2].equal(torch::full({2, 2}, 0.5f)) && t[3].item<double>() == 1e-12 + 2e-12 &&
              t[4].equal(torch::arange(10, torch::kFloat32) * 3);
    std::vector<torch::Tensor> b = {torch::full({5}, float(r) + 7), torch::full({2}, int64_t(r) * 3 + 1)};
    group.broadcast(b, 1);
    ok = ok && b[0].equal(torch::full({5}, 8.0f)) && b[1].equal(torch::full({2}, int64_t(4)));
    std::string s = group.broadcast_string(env.rank == 0 ? std::string("from rank 0\n\0x", 14) : "ignored");
    ok = ok && s == std::string("from rank 0\n\0x", 14) && group.backend() == "gloo" && group.world_size() == 2;
    ok = ok && group.all_reduce_seconds() > 0;
    if (env.rank == 1 && !ok) ::_exit(2);
    CHECK(ok);
  });
  CHECK(child == 0);
}

TEST_CASE("ProcessGroup: a peer that dies makes the collective throw DistributedError at once",
          "[train][distributed]") {
  at::set_num_threads(1);
  double waited = 0;
  int child = run_pair([&](const DistEnv& env) {
    ProcessGroup group(env, torch::kCPU, kTimeout);
    group.broadcast_string("both connected");  // else rank 1 could leave while rank 0 still connects
    if (env.rank == 1) ::_exit(0);             // gone without a word
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<torch::Tensor> t = {torch::ones({8})};
    try {
      group.all_reduce_sum(t);
      FAIL("the all-reduce returned without its peer");
    } catch (const DistributedError& e) {
      CHECK(std::string(e.what()).find("rank 0 of 2: all-reduce failed") != std::string::npos);
      CHECK(e.exit_code() == ExitCode::kDistributed);
    }
    waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  });
  CHECK(child == 0);
  CHECK(waited < 10);  // the closed connection is seen at once, not after the 20 s timeout
}

TEST_CASE("dist_env_from_environment reads torchrun's variables and names a bad one", "[train][distributed]") {
  auto clear = [] {
    for (const char* v : {"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(v);
  };
  clear();
  CHECK_FALSE(dist_env_from_environment().has_value());
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("RANK", "3", 1);
  ::setenv("MASTER_ADDR", "node7", 1);
  ::setenv("MASTER_PORT", "29511", 1);
  auto env = dist_env_from_environment();
  REQUIRE(env.has_value());
  CHECK(env->world_size == 4);
  CHECK(env->rank == 3);
  CHECK(env->local_rank == 3);  // LOCAL_RANK defaults to RANK
  CHECK(env->master_addr == "node7");
  CHECK(env->master_port == 29511);
  ::setenv("LOCAL_RANK", "1", 1);
  CHECK(dist_env_from_environment()->local_rank == 1);
  ::setenv("RANK", "4", 1);
  CHECK_THROWS_WITH(dist_env_from_environment(), Catch::Contains("RANK: expected a whole number from 0 to 3"));
  ::setenv("RANK", "x", 1);
  CHECK_THROWS_AS(dist_env_from_environment(), ConfigError);
  ::setenv("RANK", "0", 1);
  ::unsetenv("MASTER_PORT");
  CHECK_THROWS_WITH(dist_env_from_environment(), Catch::Contains("MASTER_PORT: not set"));
  clear();
}

TEST_CASE("ProcessGroup: NCCL sums CUDA tensors (world size 1)", "[train][distributed][gpu]") {
  REQUIRE(torch::cuda::is_available());
  DistEnv env;
  env.master_port = train::free_loopback_port();
  ProcessGroup group(env, torch::Device(torch::kCUDA, 0), kTimeout);
  CHECK(group.backend() == (dist_has_nccl() ? "nccl" : "gloo"));
  std::vector<torch::Tensor> t = {torch::full({1000}, 2.5f, torch::kCUDA), torch::ones({3}, torch::kFloat64).cuda()};
  group.all_reduce_sum(t);
  CHECK(t[0].device().is_cuda());
  CHECK(t[0].cpu().equal(torch::full({1000}, 2.5f)));
  CHECK(group.broadcast_string("nccl ok") == "nccl ok");
}

// Needs torchrun's environment, so it is tagged [slow] to stay out of the default run; run it with
//   torchrun --nproc-per-node 2 --no-python build/tests/test_train "[torchrun]"
// (HEARTH_TEST_CUDA=1: on the workers' CUDA devices, through NCCL when built with it).
TEST_CASE("ProcessGroup: a worker started by torchrun joins its agent's store", "[distributed][torchrun][slow]") {
  auto env = dist_env_from_environment();
  REQUIRE(env.has_value());
  const bool cuda = torch::cuda::is_available() && std::getenv("HEARTH_TEST_CUDA");
  const torch::Device device = cuda ? torch::Device(torch::kCUDA, env->local_rank) : torch::Device(torch::kCPU);
  ProcessGroup group(*env, device, kTimeout);
  std::vector<torch::Tensor> t = {torch::full({4}, float(env->rank + 1), device)};
  group.all_reduce_sum(t);
  const float n = float(env->world_size);
  CHECK(t[0].cpu().equal(torch::full({4}, n * (n + 1) / 2)));
  CHECK(group.broadcast_string(env->rank == 0 ? "hello" : "") == "hello");
}
