// c10d behind hearth's ProcessGroup (distributed.h). Compiled with USE_C10D_GLOO (the c10d headers guard their
// Gloo classes with it) and, in CUDA builds where NCCL's header was found, USE_C10D_NCCL and HEARTH_NCCL
// (lib/train/CMakeLists.txt). libtorch 1.13's process groups derive from c10d::ProcessGroup, 2.x's from
// c10d::Backend; everything else used here (TCPStore and its options, the Gloo and NCCL constructors and
// Options::create, allreduce/broadcast, Work::wait) is the same in both.
#include "train/distributed.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef HEARTH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "core/error.h"

namespace hearth::train {

namespace {

#if TORCH_VERSION_MAJOR >= 2
using Backend = c10d::Backend;
#else
using Backend = c10d::ProcessGroup;
#endif

// An environment variable as an int in [lo, hi]; `fallback` when unset (or required when fallback is nullopt).
int env_int(const char* name, std::optional<int> fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (fallback) return *fallback;
    throw ConfigError(
        fmt::format("{}: not set; a distributed worker needs RANK, WORLD_SIZE, MASTER_ADDR and "
                    "MASTER_PORT (torchrun sets them; so does --nproc-per-node)",
                    name));
  }
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi)
    throw ConfigError(fmt::format("{}: expected a whole number from {} to {}, got '{}'", name, lo, hi, v));
  return static_cast<int>(x);
}

bool is_loopback(const std::string& host) { return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0; }

std::string what_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

std::optional<DistEnv> dist_env_from_environment() {
  const char* ws = std::getenv("WORLD_SIZE");
  if (!ws || !*ws) return std::nullopt;
  DistEnv env;
  env.world_size = env_int("WORLD_SIZE", std::nullopt, 1, 1 << 16);
  env.rank = env_int("RANK", std::nullopt, 0, env.world_size - 1);
  env.local_rank = env_int("LOCAL_RANK", env.rank, 0, env.world_size - 1);
  const char* addr = std::getenv("MASTER_ADDR");
  if (!addr || !*addr) throw ConfigError("MASTER_ADDR: not set; expected the host name or address of rank 0's machine");
  env.master_addr = addr;
  env.master_port = env_int("MASTER_PORT", std::nullopt, 1, 65535);
  return env;
}

bool dist_has_nccl() {
#ifdef HEARTH_NCCL
  return true;
#else
  return false;
#endif
}

struct ProcessGroup::Impl {
  DistEnv env;
  torch::Device comm_device = torch::kCPU;  // where the collectives' buffers live
  std::chrono::milliseconds timeout{0};
  std::string backend;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Backend> group;
  double all_reduce_seconds = 0;

  [[noreturn]] void fail(const char* op, const std::exception& e) const {
    throw DistributedError(fmt::format(
        "distributed: rank {} of {}: {} failed ({}): another worker has stopped (its own error says why), did not "
        "answer within --dist-timeout ({} s), or cannot be reached at {}:{}",
        env.rank, env.world_size, op, what_of(e), timeout.count() / 1000.0, env.master_addr, env.master_port));
  }

  template <typename WorkPtr>
  void wait(WorkPtr& work, const char* op) const {
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(op, e);
    }
  }
};

ProcessGroup::ProcessGroup(const DistEnv& env, torch::Device device, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.env = env;
  m.timeout = timeout;
  try {
    // Under torchrun (torch >= 1.9) its agent already serves a TCPStore at MASTER_ADDR:MASTER_PORT and says so in
    // TORCHELASTIC_USE_AGENT_STORE; the workers then all connect as clients, under a prefix per restart (as
    // torch.distributed's env:// rendezvous does). Otherwise rank 0 serves the store.
    const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    const bool agent_store = agent && std::string(agent) == "True";
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = !agent_store && env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    m.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (agent_store) {
      const char* attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
      m.store = c10::make_intrusive<c10d::PrefixStore>(
          std::string("/worker/attempt_") + (attempt && *attempt ? attempt : "0"), m.store);
    }
  } catch (const std::exception& e) {
    m.fail("the rendezvous", e);
  }
  try {
#ifdef HEARTH_NCCL
    if (device.is_cuda()) {
      // Without blocking waits a collective that never completes is found only by NCCL's watchdog, which aborts the
      // process; with them, wait() throws after the timeout like Gloo's.
      setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      setenv("NCCL_BLOCKING_WAIT", "1", 0);
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      m.group = c10::make_intrusive<c10d::ProcessGroupNCCL>(m.store, env.rank, env.world_size, o);
      m.backend = "nccl";
      m.comm_device = device;
      return;
    }
#endif
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(env.master_addr))  // every worker is on this machine
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(env.master_addr));
    else o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    m.group = c10::make_intrusive<c10d::ProcessGroupGloo>(m.store, env.rank, env.world_size, o);
    m.backend = "gloo";
  } catch (const std::exception& e) {
    m.fail("connecting the workers", e);
  }
}

ProcessGroup::~ProcessGroup() = default;

int ProcessGroup::rank() const { return impl_->env.rank; }
int ProcessGroup::world_size() const { return impl_->env.world_size; }
std::string ProcessGroup::backend() const { return impl_->backend; }
double ProcessGroup::all_reduce_seconds() const { return impl_->all_reduce_seconds; }

namespace {

// What is packed into buckets: a contiguous tensor of more than `bucket_bytes` as views of its consecutive pieces of
// at most that size (a flat gradient of any size goes in several collectives, all in flight together), every other
// tensor as it is.
std::vector<torch::Tensor> pieces_of(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  std::vector<torch::Tensor> out;
  for (const auto& t : tensors) {
    const int64_t per = std::max<int64_t>(1, bucket_bytes / static_cast<int64_t>(t.element_size()));
    if (t.is_contiguous() && t.numel() > per)
      for (const auto& piece : t.view({-1}).split(per)) out.push_back(piece);
    else out.push_back(t);
  }
  return out;
}

// Consecutive runs of tensors that share a dtype, each under `bucket_bytes` (a larger one, not contiguous, is a bucket
// alone).
std::vector<std::vector<size_t>> buckets_make(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> out;
  int64_t bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t n = tensors[i].numel() * static_cast<int64_t>(tensors[i].element_size());
    if (out.empty() || tensors[out.back().front()].scalar_type() != tensors[i].scalar_type() ||
        bytes + n > bucket_bytes) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().push_back(i);
    bytes += n;
  }
  return out;
}

// The bucket's tensors, flattened into one buffer on `device`.
torch::Tensor bucket_pack(const std::vector<torch::Tensor>& tensors, const std::vector<size_t>& bucket,
                          torch::Device device) {
  std::vector<torch::Tensor> parts;
  for (size_t i : bucket) parts.push_back(tensors[i].detach().reshape({-1}).to(device));
  return torch::cat(parts);
}

// The buffer's values back into the bucket's tensors.
void bucket_unpack(const torch::Tensor& flat, const std::vector<torch::Tensor>& tensors,
                   const std::vector<size_t>& bucket) {
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (size_t i : bucket) {
    const int64_t n = tensors[i].numel();
    tensors[i].copy_(flat.narrow(0, offset, n).view(tensors[i].sizes()));
    offset += n;
  }
}

}  // namespace

void ProcessGroup::all_reduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes) {
  auto& m = *impl_;
  const auto t0 = std::chrono::steady_clock::now();
  const auto parts = pieces_of(tensors, bucket_bytes);
  const auto buckets = buckets_make(parts, bucket_bytes);
  std::vector<std::vector<torch::Tensor>> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = m.timeout;
  try {
    for (const auto& b : buckets) {
      flats.push_back({bucket_pack(parts, b, m.comm_device)});
      works.push_back(m.group->allreduce(flats.back(), opts));
    }
  } catch (const std::exception& e) {
    m.fail("all-reduce", e);
  }
  for (size_t k = 0; k < buckets.size(); ++k) {
    m.wait(works[k], "all-reduce");
    bucket_unpack(flats[k][0], parts, buckets[k]);
  }
  m.all_reduce_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void ProcessGroup::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  auto& m = *impl_;
  const auto parts = pieces_of(tensors, kBucketBytes);
  const auto buckets = buckets_make(parts, kBucketBytes);
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  opts.timeout = m.timeout;
  for (const auto& b : buckets) {
    std::vector<torch::Tensor> flat{bucket_pack(parts, b, m.comm_device)};
    c10::intrusive_ptr<c10d::Work> work;
    try {
      work = m.group->broadcast(flat, opts);
    } catch (const std::exception& e) {
      m.fail("broadcast", e);
    }
    m.wait(work, "broadcast");
    if (m.env.rank != root) bucket_unpack(flat[0], parts, b);
  }
}

std::string ProcessGroup::broadcast_string(const std::string& text, int root) {
  auto size = torch::tensor({static_cast<int64_t>(text.size())}, torch::kInt64);
  broadcast({size}, root);
  const int64_t n = size.item<int64_t>();
  if (n == 0) return {};
  auto bytes = torch::zeros({n}, torch::kUInt8);
  if (impl_->env.rank == root) std::memcpy(bytes.data_ptr<uint8_t>(), text.data(), text.size());
  broadcast({bytes}, root);
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), static_cast<size_t>(n));
}

}  // namespace hearth::train
