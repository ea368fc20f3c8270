// Data-parallel collectives over PyTorch's c10d: the rendezvous (a TCPStore that rank 0 hosts) and a process
// group (Gloo for CPU tensors; NCCL for CUDA tensors when libtorch was built with CUDA and NCCL's headers were
// found). This is the only file that names c10d: its API differs between libtorch 1.13 (Debian) and 2.x
// (ProcessGroup vs Backend), and distributed.cpp holds the difference. What training does with the collectives
// (shards, gradient averaging, who writes) is in data_parallel.h.
//
// The environment is torchrun's (https://pytorch.org/docs/stable/elastic/run.html, "Environment Variables"):
// RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. GLOO_SOCKET_IFNAME picks the network interface Gloo
// uses, as in PyTorch.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

namespace hearth::train {

// One worker's place in a data-parallel run.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // the rank among the workers of this machine (its CUDA device)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// The worker's place from torchrun's variables; std::nullopt when WORLD_SIZE is unset (a plain single process).
// Throws ConfigError naming the variable when one is missing, not a number, or out of range (RANK >= WORLD_SIZE).
std::optional<DistEnv> dist_env_from_environment();

// True when this build can reduce CUDA tensors with NCCL (else CUDA tensors go through Gloo via the CPU).
bool dist_has_nccl();

// A process group of `world_size` workers. Every call is collective: all ranks make the same calls in the same
// order with tensors of the same shapes and dtypes. A call throws DistributedError (exit 6) naming this rank and
// the operation when a peer has gone (its connection closed) or the call did not complete within the timeout —
// never hangs longer. Not thread-safe.
// The collectives' bucket size (ProcessGroup::all_reduce_sum, broadcast).
constexpr int64_t kBucketBytes = int64_t(25) << 20;

class ProcessGroup {
 public:
  // Rendezvous at MASTER_ADDR:MASTER_PORT (rank 0 listens there) and connects the workers. Tensors that live on
  // `device` are reduced there (NCCL on CUDA when available). Throws DistributedError when the peers do not all
  // arrive within `timeout`, ResourceError when rank 0 cannot listen on the port.
  ProcessGroup(const DistEnv& env, torch::Device device, std::chrono::milliseconds timeout);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int world_size() const;
  std::string backend() const;  // "gloo" | "nccl"

  // Sums each tensor over the ranks, in place. Tensors of one dtype are packed into buckets of at most
  // `bucket_bytes`, a larger contiguous tensor cut into pieces of that size (one collective per bucket, all in flight
  // together).
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes = kBucketBytes);
  // Rank `root`'s values of `tensors`, in place on every rank (packed like all_reduce_sum).
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  // Rank `root`'s string, on every rank.
  std::string broadcast_string(const std::string& text, int root = 0);

  // Wall-clock seconds spent in all_reduce_sum since the group was made (packing included).
  double all_reduce_seconds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::train
