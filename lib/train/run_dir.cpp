#include "train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "io/remove_tree.h"
#include "model/checkpoint.h"

namespace hearth::train {
namespace fs = std::filesystem;

namespace {

// The files of a checkpoint that state.json records checksums of.
constexpr const char* kCheckpointFiles[] = {"adapter_config.json", "adapter_model.safetensors",
                                            "optimizer.safetensors"};

std::vector<fs::path> checkpoints_sorted(const fs::path& run_dir) {
  std::vector<fs::path> out;
  fs::path dir = run_dir / "checkpoints";
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0 && fs::exists(e.path() / "state.json"))
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

void dir_fsync(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

RunLock::RunLock(const fs::path& run_dir) {
  fs::create_directories(run_dir);
  fs::path path = run_dir / ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(fmt::format("{}: cannot open lock file: {}", path.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    throw ResourceError(fmt::format("{}: another run (pid {}) is using this run directory", run_dir.string(),
                                    n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?")));
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    // the PID is informational only
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

namespace {
// Removes the ".tmp-*" entries of `dir`: folders of writes that never completed (a full disk, a crash). Only called
// with the run's lock held, so no other process can be writing one.
void temporaries_sweep(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) io::remove_tree(e.path(), ec);
}

// Removes a temporary folder when the write that fills it fails, so a full disk is not left fuller.
struct TempDirGuard {
  fs::path path;
  bool keep = false;
  ~TempDirGuard() {
    std::error_code ec;
    if (!keep) io::remove_tree(path, ec);
  }
};
}  // namespace

std::string identity_changes(const nlohmann::json& was, const nlohmann::json& now) {
  std::vector<std::string> out;
  auto text = [](const nlohmann::json* v) { return v ? v->dump() : std::string("(absent)"); };
  std::function<void(const nlohmann::json*, const nlohmann::json*, const std::string&)> walk =
      [&](const nlohmann::json* a, const nlohmann::json* b, const std::string& path) {
        if (a && b && a->is_object() && b->is_object()) {
          std::set<std::string> keys;
          for (const auto& [k, v] : a->items()) keys.insert(k);
          for (const auto& [k, v] : b->items()) keys.insert(k);
          for (const auto& k : keys)
            walk(a->contains(k) ? &(*a)[k] : nullptr, b->contains(k) ? &(*b)[k] : nullptr,
                 path.empty() ? k : path + "." + k);
          return;
        }
        if (!a || !b || *a != *b) out.push_back(fmt::format("{}: {} -> {}", path, text(a), text(b)));
      };
  walk(&was, &now, "");
  std::string joined;
  for (const auto& s : out) joined += (joined.empty() ? "" : ", ") + s;
  return joined.empty() ? "no key differs" : joined;
}

nlohmann::json train_state_counters(const TrainState& s, int64_t optimizer_steps) {
  return {{"step", s.step},
          {"optimizer_steps", optimizer_steps},
          {"epoch", s.loader.epoch},
          {"epoch_offset", s.loader.offset},
          {"best_eval", s.best_eval},
          {"evals", s.evals},
          {"evals_without_improvement", s.evals_without_improvement},
          {"tokens_seen", s.tokens_seen},
          {"elapsed_seconds", s.elapsed_seconds},
          {"world_size", s.world_size}};
}

void train_state_counters_read(const nlohmann::json& j, TrainState& s) {
  s.step = j.at("step").get<int64_t>();
  s.loader = {j.at("epoch").get<int64_t>(), j.at("epoch_offset").get<int64_t>()};
  s.best_eval = j.at("best_eval").get<double>();
  s.evals = j.at("evals").get<int64_t>();
  s.evals_without_improvement = j.at("evals_without_improvement").get<int64_t>();
  s.tokens_seen = j.at("tokens_seen").get<int64_t>();
  s.elapsed_seconds = j.at("elapsed_seconds").get<double>();
  s.world_size = j.value("world_size", int64_t(1));
}

void checkpoint_save(const fs::path& run_dir, const TrainState& s, const model::LoraAdapter& adapter,
                     const AdamW& optimizer, int64_t keep_last) {
  fs::path root = run_dir / "checkpoints";
  fs::create_directories(root);
  temporaries_sweep(root);  // a previous run's failed writes would otherwise fill the disk for good
  fs::path final_dir = root / fmt::format("step-{:08d}", s.step);
  fs::path tmp = root / fmt::format(".tmp-step-{:08d}-{}", s.step, ::getpid());
  TempDirGuard guard{tmp};
  fs::create_directories(tmp);
  adapter.save(tmp);
  std::map<std::string, torch::Tensor> opt;
  for (size_t i = 0; i < optimizer.exp_avg().size(); ++i) {
    opt[fmt::format("exp_avg.{:05d}", i)] = optimizer.exp_avg()[i];
    opt[fmt::format("exp_avg_sq.{:05d}", i)] = optimizer.exp_avg_sq()[i];
  }
  opt["rng_state"] = s.rng_state;
  if (s.device_rng_state.defined()) opt["device_rng_state"] = s.device_rng_state;
  model::safetensors_save(tmp / "optimizer.safetensors", opt);
  nlohmann::json state = train_state_counters(s, optimizer.steps());
  state["identity"] = s.identity;
  // Checksums of the other files, verified on resume: a checkpoint damaged on disk is detected, not trained from.
  nlohmann::json files = nlohmann::json::object();
  for (const char* f : kCheckpointFiles) {
    Sha256 h;
    h.update_file(tmp / f);
    files[f] = digest_hex(h.digest());
  }
  state["files"] = files;
  io::atomic_write(tmp / "state.json", state.dump(2));
  dir_fsync(tmp);
  if (fs::exists(final_dir)) io::remove_tree(final_dir);
  fs::rename(tmp, final_dir);
  guard.keep = true;
  dir_fsync(root);
  auto all = checkpoints_sorted(run_dir);
  for (size_t i = 0; i + keep_last < all.size(); ++i) io::remove_tree(all[i]);
  temporaries_sweep(root);
}

std::optional<fs::path> checkpoint_resume(const fs::path& run_dir, model::LoraAdapter& adapter, AdamW& optimizer,
                                          TrainState& state) {
  auto all = checkpoints_sorted(run_dir);
  std::vector<std::string> failures;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    std::string failure;
    try {
      state = checkpoint_load(*it, adapter, optimizer);
    } catch (const FormatError& e) {
      failure = e.what();
    } catch (const IoError& e) {
      failure = e.what();
    }
    if (failure.empty()) {
      if (!failures.empty()) log::warn("resuming from {}, the newest valid checkpoint", it->string());
      return *it;
    }
    // Set aside (kept for inspection, no longer a checkpoint) so that later saves and resumes skip it.
    fs::path aside = it->parent_path() / ("corrupt-" + it->filename().string());
    std::error_code ec;
    io::remove_tree(aside, ec);
    fs::rename(*it, aside, ec);
    log::warn("{}; checkpoint set aside as {}, trying the one before", failure, aside.string());
    failures.push_back(failure);
  }
  if (!failures.empty())
    throw FormatError(fmt::format("{}: no valid checkpoint to resume from ({}); use --fresh to start over",
                                  (run_dir / "checkpoints").string(), fmt::join(failures, "; ")));
  return std::nullopt;
}

TrainState checkpoint_load(const fs::path& dir, model::LoraAdapter& adapter, AdamW& optimizer) {
  auto state = io::json_read(dir / "state.json");
  if (state.is_object() && state.contains("files") && state["files"].is_object())  // before anything is changed
    for (const char* f : kCheckpointFiles) {
      if (!state["files"].contains(f)) continue;
      Sha256 h;
      h.update_file(dir / f);
      if (digest_hex(h.digest()) != state["files"][f])
        throw FormatError(fmt::format("{}: checksum mismatch (the file changed or was damaged after it was written)",
                                      (dir / f).string()));
    }
  auto tensors = model::safetensors_tensors(dir / "optimizer.safetensors");
  std::string origin = (dir / "optimizer.safetensors").string();
  // adapter weights, in place (the optimizer holds the same tensors)
  auto saved = model::safetensors_tensors(dir / "adapter_model.safetensors");
  auto named = adapter.named_tensors();
  for (auto& [name, t] : named) {
    auto it = saved.find(name);
    if (it == saved.end() || !it->second.sizes().equals(t.sizes()))
      throw FormatError(fmt::format("{}: tensor '{}' missing or of another shape",
                                    (dir / "adapter_model.safetensors").string(), name));
    torch::NoGradGuard g;
    t.copy_(it->second);
  }
  std::vector<torch::Tensor> m, v;
  for (size_t i = 0;; ++i) {
    auto a = tensors.find(fmt::format("exp_avg.{:05d}", i)), b = tensors.find(fmt::format("exp_avg_sq.{:05d}", i));
    if (a == tensors.end() || b == tensors.end()) break;
    m.push_back(a->second);
    v.push_back(b->second);
  }
  TrainState s;
  try {
    optimizer.state_load(m, v, state.at("optimizer_steps").get<int64_t>());
    train_state_counters_read(state, s);
    s.identity = state.at("identity");
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("{}: {}", (dir / "state.json").string(), e.what()));
  } catch (const FormatError& e) {
    throw FormatError(fmt::format("{}: {}", origin, e.what()));
  }
  auto rng = tensors.find("rng_state");
  if (rng == tensors.end()) throw FormatError(fmt::format("{}: rng_state missing", origin));
  s.rng_state = rng->second.clone();
  if (auto dev = tensors.find("device_rng_state"); dev != tensors.end()) s.device_rng_state = dev->second.clone();
  return s;
}

namespace {
// What base_record's cached hash depends on: each weight file's name, size and modification time.
nlohmann::json weight_files_key(const fs::path& model) {
  std::vector<fs::path> files;
  if (fs::is_directory(model)) {
    files.push_back(model / "config.json");
    for (const auto& e : fs::directory_iterator(model))
      if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
  } else {
    files.push_back(model);
  }
  std::sort(files.begin(), files.end());
  nlohmann::json key = nlohmann::json::array();
  for (const auto& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    const auto mtime = fs::last_write_time(f, ec).time_since_epoch().count();
    key.push_back({f.filename().string(), ec ? -1 : static_cast<int64_t>(size), static_cast<int64_t>(mtime)});
  }
  return key;
}
}  // namespace

nlohmann::json base_record(const fs::path& run_dir, const fs::path& model) {
  const std::string path = fs::absolute(model).lexically_normal().string();
  const nlohmann::json key = weight_files_key(model);
  const fs::path cache = run_dir / "base.json";
  if (fs::exists(cache)) {
    nlohmann::json cached = nlohmann::json::parse(io::file_read(cache), nullptr, false);
    if (cached.is_object() && cached.value("path", "") == path && cached.value("files", nlohmann::json()) == key &&
        cached.contains("sha256") && cached["sha256"].is_string())
      return {{"path", path}, {"kind", cached.value("kind", "")}, {"sha256", cached["sha256"]}};
  }
  const std::string kind = fs::is_directory(model) ? "hf" : "gguf";
  const std::string sha = model::model_sha256(model);
  io::atomic_write(cache,
                   nlohmann::json{{"path", path}, {"kind", kind}, {"sha256", sha}, {"files", key}}.dump(2) + "\n");
  return {{"path", path}, {"kind", kind}, {"sha256", sha}};
}

fs::path adapter_publish(const fs::path& run_dir, const model::LoraAdapter& adapter, const nlohmann::json& base) {
  fs::path root = run_dir / "adapters";
  fs::create_directories(root);
  int next = 1;
  for (const auto& e : fs::directory_iterator(root)) {
    std::string n = e.path().filename().string();
    if (n.size() == 5 && n[0] == 'v') next = std::max(next, std::atoi(n.c_str() + 1) + 1);
  }
  std::string name = fmt::format("v{:04d}", next);
  temporaries_sweep(root);
  fs::path tmp = root / (".tmp-" + name);
  TempDirGuard guard{tmp};
  adapter.save(tmp);
  if (base.is_object()) io::atomic_write(tmp / "hearth_base.json", base.dump(2) + "\n");
  dir_fsync(tmp);
  fs::rename(tmp, root / name);
  guard.keep = true;
  fs::path link_tmp = root / ".latest.tmp";
  fs::remove(link_tmp);
  fs::create_symlink(name, link_tmp);
  fs::rename(link_tmp, root / "latest");  // rename(2) over the old link is atomic
  dir_fsync(root);
  return root / name;
}

void metrics_truncate(const fs::path& run_dir, int64_t step) {
  fs::path path = run_dir / "metrics.jsonl";
  if (!fs::exists(path)) return;
  std::istringstream in(io::file_read(path));
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      if (j.value("step", int64_t(0)) <= step) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      // a torn last line from a killed run: drop it
    }
  }
  io::atomic_write(path, kept);
}

void metrics_append(const fs::path& run_dir, const nlohmann::json& line) {
  std::ofstream out(run_dir / "metrics.jsonl", std::ios::app);
  out << line.dump() << "\n";
  out.flush();
  if (!out) throw IoError(fmt::format("{}: cannot append", (run_dir / "metrics.jsonl").string()));
}

}  // namespace hearth::train
