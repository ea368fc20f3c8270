// The Hugging Face cache layout (io/hf_cache.h) on a cache built by hand as huggingface_hub writes it: names,
// resolution of --model values, listing, removal with shared blobs. The cache `hearth pull` writes is checked end
// to end in tests/cli/test_pull.cpp.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hf_cache.h"
#include "io/model_summary.h"

using namespace hearth;
namespace fs = std::filesystem;

namespace {

const std::string kA = "1111111111111111111111111111111111111111";
const std::string kB = "2222222222222222222222222222222222222222";

fs::path cache_root(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("hearth_test_hfcache_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A blob with `text`, linked from snapshots/COMMIT/PATH as huggingface_hub links it.
void cache_file(const fs::path& repo_dir, const std::string& commit, const std::string& path, const std::string& blob,
                const std::string& text) {
  fs::create_directories(repo_dir / "blobs");
  io::atomic_write(repo_dir / "blobs" / blob, text);
  const fs::path link = repo_dir / "snapshots" / commit / path;
  fs::create_directories(link.parent_path());
  fs::create_symlink((repo_dir / "blobs" / blob).lexically_relative(link.parent_path()), link);
}

void cache_ref(const fs::path& repo_dir, const std::string& ref, const std::string& commit) {
  fs::create_directories((repo_dir / "refs" / ref).parent_path());
  io::atomic_write(repo_dir / "refs" / ref, commit);
}

// Sets (or, with nullptr, unsets) an environment variable for one scope.
struct EnvVar {
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* v = std::getenv(name)) old_ = v, had_ = true;
    value ? (void)::setenv(name, value, 1) : (void)::unsetenv(name);
  }
  EnvVar(const char* name, const std::string& value) : EnvVar(name, value.c_str()) {}
  ~EnvVar() { had_ ? (void)::setenv(name_, old_.c_str(), 1) : (void)::unsetenv(name_); }
  const char* name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace

TEST_CASE("hf names parse as org/name[@revision] and nothing else", "[io]") {
  auto r = io::hf_repo_ref_parse("HuggingFaceTB/SmolLM2-135M-Instruct");
  REQUIRE(r);
  CHECK(r->repo == "HuggingFaceTB/SmolLM2-135M-Instruct");
  CHECK(r->revision == "main");
  auto at = io::hf_repo_ref_parse("Qwen/Qwen2.5-0.5B@refs/pr/1");
  REQUIRE(at);
  CHECK(at->repo == "Qwen/Qwen2.5-0.5B");
  CHECK(at->revision == "refs/pr/1");
  for (const char* bad : {"gpt2", "/abs/path", "./org/name", "a/b/c", "org/na me", "org/a--b", "org/a..b", "org/",
                          "org/name@", "org/name@../x", "org/name@a//b", "-org/name", "~/models"}) {
    INFO(bad);
    CHECK_FALSE(io::hf_repo_ref_parse(bad));
  }
  CHECK(io::hf_repo_dir("/c", "org/name") == fs::path("/c/models--org--name"));
  CHECK(io::hf_commit_like(kA));
  CHECK_FALSE(io::hf_commit_like("main"));
  CHECK(*io::hf_repo_of_path("/c/models--org--name/snapshots/" + kA + "/model.gguf") == "org/name");
  CHECK_FALSE(io::hf_repo_of_path("/home/me/models/SmolLM2"));
}

TEST_CASE("the cache folder comes from HF_HUB_CACHE, then HF_HOME, then HOME", "[io]") {
  EnvVar home("HOME", "/home/u"), no_hub("HF_HUB_CACHE", nullptr), no_home("HF_HOME", nullptr);
  CHECK(io::hf_cache_dir() == fs::path("/home/u/.cache/huggingface/hub"));
  EnvVar hf_home("HF_HOME", "/data/hf");
  CHECK(io::hf_cache_dir() == fs::path("/data/hf/hub"));
  EnvVar hub("HF_HUB_CACHE", "/fast/hub");
  CHECK(io::hf_cache_dir() == fs::path("/fast/hub"));
}

TEST_CASE("model_path_resolve: paths win, names find their snapshot, uncached names say how to pull", "[io]") {
  const fs::path cache = cache_root("resolve");
  EnvVar hub("HF_HUB_CACHE", cache.string());
  const fs::path repo = cache / "models--org--model";
  cache_file(repo, kA, "config.json", "c1", "{}");
  cache_ref(repo, "main", kA);
  cache_file(repo, kB, "config.json", "c2", "{}");
  cache_ref(repo, "v2", kB);
  CHECK(io::model_path_resolve("org/model") == repo / "snapshots" / kA);
  CHECK(io::model_path_resolve("org/model@v2") == repo / "snapshots" / kB);
  CHECK(io::model_path_resolve("org/model@" + kB) == repo / "snapshots" / kB);
  CHECK(io::model_path_resolve("/no/such/dir") == fs::path("/no/such/dir"));  // left for the command to report
  CHECK(io::model_path_resolve(cache.string()) == cache);                     // an existing path, unchanged
  try {
    io::model_path_resolve("org/model@v3");
    FAIL("expected IoError");
  } catch (const IoError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("hearth pull org/model@v3") != std::string::npos);
    CHECK(msg.find("cached revisions: main, v2") != std::string::npos);
  }
  CHECK_THROWS_AS(io::model_path_resolve("other/model"), IoError);
  io::atomic_write(repo / "refs" / "broken", "not a commit\n");
  CHECK_THROWS_AS(io::model_path_resolve("org/model@broken"), FormatError);

  // A GGUF-only snapshot resolves to its one .gguf; with two, the error names both.
  const fs::path gguf = cache / "models--org--model-GGUF";
  cache_file(gguf, kA, "model-Q4_K_M.gguf", "g1", "GGUF");
  cache_ref(gguf, "main", kA);
  CHECK(io::model_path_resolve("org/model-GGUF") == gguf / "snapshots" / kA / "model-Q4_K_M.gguf");
  cache_file(gguf, kA, "model-Q8_0.gguf", "g2", "GGUF");
  CHECK_THROWS_WITH(io::model_path_resolve("org/model-GGUF"), Catch::Contains("model-Q4_K_M.gguf, model-Q8_0.gguf"));
}

TEST_CASE("hf_cache_list and hf_snapshot_remove keep blobs another snapshot links to", "[io]") {
  const fs::path cache = cache_root("remove");
  const fs::path repo = cache / "models--org--model";
  cache_file(repo, kA, "config.json", "cfgA", "{\"a\": 1}");
  cache_file(repo, kA, "model.safetensors", "weights", std::string(1000, 'w'));
  cache_file(repo, kA, "sub/extra.txt", "extra", "x");
  cache_ref(repo, "main", kA);
  cache_file(repo, kB, "config.json", "cfgB", "{\"b\": 2}");
  fs::create_symlink("../../blobs/weights", repo / "snapshots" / kB / "model.safetensors");  // shared
  cache_ref(repo, "v2", kB);
  cache_ref(repo, "refs/pr/1", kB);
  io::atomic_write(repo / "blobs" / "partial.incomplete", "half");
  fs::create_directories(cache / ".locks" / "models--org--model");

  auto list = io::hf_cache_list(cache);
  REQUIRE(list.size() == 2);
  CHECK(list[0].commit == kA);
  CHECK(list[0].refs == std::vector<std::string>{"main"});
  CHECK(list[0].files == 3);
  CHECK(list[0].bytes == 8 + 1000 + 1);
  CHECK(list[1].refs == std::vector<std::string>{"refs/pr/1", "v2"});
  auto of = io::hf_cached_model_of(cache, repo / "snapshots" / kB / "config.json");
  REQUIRE(of);
  CHECK(of->commit == kB);
  CHECK_FALSE(io::hf_cached_model_of(cache, cache));

  auto r = io::hf_snapshot_remove(cache, "org/model", kB);
  CHECK(r.refs == std::vector<std::string>{"refs/pr/1", "v2"});
  CHECK(r.blobs == 1);  // cfgB; weights is main's too
  CHECK(r.bytes == 8);
  CHECK_FALSE(r.repo_removed);
  CHECK(fs::exists(repo / "blobs" / "weights"));
  CHECK_FALSE(fs::exists(repo / "blobs" / "cfgB"));
  CHECK_FALSE(fs::exists(repo / "refs" / "v2"));
  CHECK(io::hf_cache_list(cache).size() == 1);

  auto last = io::hf_snapshot_remove(cache, "org/model", kA);
  CHECK(last.blobs == 3);
  CHECK(last.repo_removed);
  CHECK_FALSE(fs::exists(repo));
  CHECK_FALSE(fs::exists(cache / ".locks" / "models--org--model"));
  CHECK_THROWS_AS(io::hf_snapshot_remove(cache, "org/model", kA), IoError);
}

TEST_CASE("model_summary_read names the family, dtype and GGUF file type", "[io]") {
  const fs::path src = HEARTH_SOURCE_DIR;
  auto hf = io::model_summary_read(src / "models" / "stories260K");
  CHECK(hf.format == "hf");
  CHECK(hf.model_type == "llama");
  CHECK(hf.dtype == "F32");
  CHECK(hf.parameters == 260032);
  CHECK(hf.bytes > 1000000);
  auto gguf = io::model_summary_read(src / "tests" / "fixtures" / "kq256" / "model-q4_k_m.gguf");
  CHECK(gguf.format == "gguf");
  CHECK(gguf.model_type == "llama");
  CHECK(gguf.dtype == "Q4_K_M");
  CHECK(io::gguf_file_type_name(18) == "Q6_K");
  CHECK(io::gguf_file_type_name(999).empty());
  CHECK_THROWS_AS(io::model_summary_read(src / "no-such-model"), IoError);
}
