// End to end: `hearth pull`, `--model org/name`, `hearth list` and `hearth rm` against a fake Hub (fake_hub.h) that
// serves the bundled stories260K model and a GGUF repo, each test with its own HF_HOME. Checks the cache layout
// huggingface_hub writes (refs, relative snapshot links, blobs named by ETag), resumption with Range, checksums,
// the Hub's error replies and where the token goes.
#include <catch2/catch.hpp>

#include <filesystem>

#include "cli_util.h"
#include "core/sha256.h"
#include "fake_hub.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "test_paths.h"

using namespace hearth;
using test::FakeCommit;
using test::FakeFile;
using test::FakeHub;
using test::quote;
using test::run_hearth;
using test::scratch;
namespace fs = std::filesystem;

namespace {

const std::string kRepo = "hearth-test/stories260K";
const std::string kGgufRepo = "hearth-test/kq256-GGUF";
const std::string kShardedRepo = "hearth-test/stories260K-sharded";
const std::string kC1 = "0123456789abcdef0123456789abcdef01234567";
const std::string kC2 = "fedcba9876543210fedcba9876543210fedcba98";
const std::string kC3 = "aaaabbbbccccddddeeeeffff0000111122223333";
const std::string kC4 = "4444444444444444444444444444444444444444";
// The files `hearth pull` takes by default (README.md and expected.json are in the repo but not pulled).
const std::vector<std::string> kDefaultFiles = {"config.json",       "generation_config.json",
                                                "model.safetensors", "special_tokens_map.json",
                                                "tokenizer.json",    "tokenizer_config.json"};

FakeFile fixture(const fs::path& dir, const std::string& name, bool lfs) {
  return {name, io::file_read(dir / name), lfs};
}

std::vector<FakeFile> stories_files() {
  const fs::path d = test::stories_dir();
  return {fixture(d, "README.md", false),        fixture(d, "config.json", false),
          fixture(d, "expected.json", false),    fixture(d, "generation_config.json", false),
          fixture(d, "model.safetensors", true), fixture(d, "special_tokens_map.json", false),
          fixture(d, "tokenizer.json", false),   fixture(d, "tokenizer_config.json", false)};
}

// stories260K with its weights as the one shard of model.safetensors.index.json, beside a second copy of them
// (consolidated.safetensors, as Mistral's repos have) that a default pull must not download.
std::vector<FakeFile> sharded_files() {
  std::vector<FakeFile> out;
  nlohmann::json map = nlohmann::json::object();
  for (const auto& name : io::SafetensorsArchive::open(test::stories_dir()).names())
    map[name] = "model-00001-of-00001.safetensors";
  for (auto f : stories_files()) {
    if (f.path == "model.safetensors") {
      out.push_back({"consolidated.safetensors", f.bytes, true});
      f.path = "model-00001-of-00001.safetensors";
    }
    out.push_back(f);
  }
  out.push_back({"model.safetensors.index.json", nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump(), false});
  return out;
}

// stories260K at kC1 (main), the same with another config.json at kC2 (tag v2), a GGUF repo at kC3, and a
// sharded stories260K at kC4.
std::vector<FakeCommit> fake_repos() {
  std::vector<FakeFile> v2 = stories_files();
  for (auto& f : v2)
    if (f.path == "config.json") f.bytes.insert(f.bytes.rfind('}'), ",\n  \"hearth_test_revision\": 2\n");
  const fs::path kq = test::fixtures_dir() / "kq256";
  return {
      {kRepo, kC1, {"main"}, stories_files()},
      {kRepo, kC2, {"v2"}, v2},
      {kGgufRepo,
       kC3,
       {"main"},
       {fixture(kq, "README.md", false), fixture(kq, "model-q4_k_m.gguf", true), fixture(kq, "model-q8_0.gguf", true)}},
      {kShardedRepo, kC4, {"main"}, sharded_files()}};
}

// A fresh HF_HOME for one test.
fs::path fresh_home(const std::string& name) {
  const fs::path home = scratch() / ("hf_" + name);
  fs::remove_all(home);
  fs::create_directories(home);
  return home;
}

// The environment of a run: this HF_HOME and endpoint (and token), nothing from the caller's HF_* variables.
std::string hf_env(const fs::path& home, const FakeHub& hub, const std::string& token = "") {
  return "env -u HF_HUB_CACHE -u HF_TOKEN -u HF_ENDPOINT HF_HOME=" + quote(home) + " HF_ENDPOINT=" + hub.endpoint() +
         (token.empty() ? "" : " HF_TOKEN=" + token);
}

fs::path repo_dir(const fs::path& home, const std::string& repo = kRepo) {
  std::string folder = "models--" + repo;
  folder.replace(folder.find('/'), 1, "--");
  return home / "hub" / folder;
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

const FakeFile& file_named(const std::string& name) {
  static const std::vector<FakeFile> files = stories_files();
  for (const auto& f : files)
    if (f.path == name) return f;
  FAIL("no fixture file " << name);
  return files[0];
}

std::vector<int> greedy_ids(const std::string& model, const std::string& env) {
  auto r = run_hearth("--json generate -m " + model + " --prompt 'Once upon a time' --temperature 0 --max-tokens 12",
                      env);
  INFO(r.err);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out)["token_ids"].get<std::vector<int>>();
}

}  // namespace

TEST_CASE("hearth pull writes the cache layout transformers reads, and --model org/name loads it", "[cli][pull]") {
  FakeHub hub(fake_repos());
  const fs::path home = fresh_home("layout");
  const std::string env = hf_env(home, hub);
  auto r = run_hearth("--json pull " + kRepo, env);
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["commit"] == kC1);
  CHECK(j["revision"] == "main");
  CHECK(j["bytes_downloaded"].get<uint64_t>() > 1000000);
  std::vector<std::string> pulled;
  for (const auto& f : j["files"]) pulled.push_back(f["path"]);
  std::sort(pulled.begin(), pulled.end());
  CHECK(pulled == kDefaultFiles);

  // refs/main holds the commit; snapshot entries are relative links to blobs named by ETag (sha256 for LFS files,
  // the git blob id otherwise), with the bytes the Hub served.
  const fs::path dir = repo_dir(home);
  CHECK(io::file_read(dir / "refs" / "main") == kC1);
  CHECK(fs::path(j["path"].get<std::string>()) == dir / "snapshots" / kC1);
  CHECK(names_in(dir / "snapshots" / kC1) == kDefaultFiles);
  for (const auto& name : kDefaultFiles) {
    const FakeFile& f = file_named(name);
    const fs::path link = dir / "snapshots" / kC1 / name;
    INFO(name);
    REQUIRE(fs::is_symlink(link));
    CHECK(fs::read_symlink(link) == fs::path("../../blobs") / test::etag_of(f));
    CHECK(io::file_read(link) == f.bytes);
  }
  CHECK(test::etag_of(file_named("model.safetensors")) == sha256_hex(file_named("model.safetensors").bytes));
  CHECK(names_in(dir / "blobs").size() == kDefaultFiles.size());  // no .incomplete left

  // The listing was asked with ?blobs=true; the LFS file came from the CDN after the 302.
  bool blobs_query = false, from_cdn = false;
  for (const auto& s : hub.seen()) {
    blobs_query |= s.path.find("/api/models/") == 0 && s.query == "blobs=true";
    from_cdn |= s.server == "cdn";
  }
  CHECK(blobs_query);
  CHECK(from_cdn);

  // Loading by name (also @main and @commit) generates exactly what the folder does.
  const auto want = greedy_ids("'" + test::stories_dir().string() + "'", env);
  CHECK(greedy_ids(kRepo, env) == want);
  CHECK(greedy_ids(kRepo + "@main", env) == want);
  CHECK(greedy_ids(kRepo + "@" + kC1, env) == want);
  auto inspect = run_hearth("--json inspect -m " + kRepo, env);
  REQUIRE(inspect.code == 0);
  CHECK(nlohmann::json::parse(inspect.out)["parameters"] == 260032);

  // A second pull finds everything cached and downloads nothing.
  auto again = run_hearth("--json pull " + kRepo, env);
  REQUIRE(again.code == 0);
  CHECK(nlohmann::json::parse(again.out)["bytes_downloaded"] == 0);
}

TEST_CASE("a sharded repo: pull reads the index and takes only the shards it lists", "[cli][pull]") {
  FakeHub hub(fake_repos());
  const fs::path home = fresh_home("sharded");
  const std::string env = hf_env(home, hub);
  auto r = run_hearth("--json pull " + kShardedRepo, env);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const fs::path snap = repo_dir(home, kShardedRepo) / "snapshots" / kC4;
  CHECK(fs::exists(snap / "model.safetensors.index.json"));
  CHECK(fs::exists(snap / "model-00001-of-00001.safetensors"));
  CHECK_FALSE(fs::exists(fs::symlink_status(snap / "consolidated.safetensors")));
  for (const auto& s : hub.seen()) CHECK(s.path.find("consolidated") == std::string::npos);
  CHECK(greedy_ids(kShardedRepo, env) == greedy_ids("'" + test::stories_dir().string() + "'", env));
}

TEST_CASE("a name that is not cached is exit 3 and says to pull it, and a path that exists wins over a name",
          "[cli][pull]") {
  FakeHub hub(fake_repos());
  const fs::path home = fresh_home("notcached");
  auto r = run_hearth("generate -m nobody/nothing --prompt hi", hf_env(home, hub));
  CHECK(r.code == 3);
  CHECK(r.err.find("hearth pull nobody/nothing") != std::string::npos);
  CHECK(r.err.find("--model") != std::string::npos);
  auto rev = run_hearth("--json inspect -m " + kRepo + "@v2", hf_env(home, hub));
  CHECK(rev.code == 3);
  CHECK(nlohmann::json::parse(rev.out)["error"]["exit_code"] == 3);

  // ./hearth-test/stories260K, a folder, is used even though the name is not cached.
  const fs::path cwd = scratch() / "pathwins";
  fs::remove_all(cwd);
  fs::create_directories(cwd / "hearth-test");
  fs::copy(test::stories_dir(), cwd / kRepo);
  auto local = run_hearth("--json inspect -m " + kRepo, "cd " + quote(cwd) + " && " + hf_env(home, hub));
  INFO(local.err);
  CHECK(local.code == 0);
}

TEST_CASE("pull resumes a cut transfer with a Range request and checks the sha256", "[cli][pull]") {
  FakeHub hub(fake_repos());
  const std::string sha = sha256_hex(file_named("model.safetensors").bytes);
  auto ranges_of_cdn = [&] {
    std::vector<std::string> out;
    for (const auto& s : hub.seen())
      if (s.server == "cdn") out.push_back(s.range);
    return out;
  };

  SECTION("within one run: the retry asks for the rest") {
    const fs::path home = fresh_home("resume1");
    hub.cut_file = "model.safetensors";
    hub.cut_at = 400000;
    hub.cuts = 1;
    auto r = run_hearth("--json pull " + kRepo, hf_env(home, hub));
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(ranges_of_cdn() == std::vector<std::string>{"", "bytes=400000-"});
    CHECK(r.err.find("retrying") != std::string::npos);
    const fs::path blob = repo_dir(home) / "blobs" / sha;
    CHECK(sha256_hex(io::file_read(blob)) == sha);
  }
  SECTION("across runs: the partial file stays, the next run resumes it") {
    const fs::path home = fresh_home("resume2");
    hub.cut_file = "model.safetensors";
    hub.cut_at = 300000;
    hub.cuts = 1;
    auto first = run_hearth("pull --retries 0 " + kRepo, hf_env(home, hub));
    CHECK(first.code == 3);
    CHECK(first.err.find("run the same command again to resume") != std::string::npos);
    const fs::path partial = repo_dir(home) / "blobs" / (sha + ".incomplete");
    REQUIRE(fs::exists(partial));
    CHECK(fs::file_size(partial) == 300000);
    CHECK_FALSE(fs::exists(repo_dir(home) / "refs" / "main"));  // not resolvable until complete
    CHECK(run_hearth("inspect -m " + kRepo, hf_env(home, hub)).code == 3);

    hub.seen_clear();
    auto second = run_hearth("--json pull " + kRepo, hf_env(home, hub));
    INFO(second.err);
    REQUIRE(second.code == 0);
    CHECK(ranges_of_cdn() == std::vector<std::string>{"bytes=300000-"});
    const auto pulled = nlohmann::json::parse(second.out);
    int resumed = 0;
    for (const auto& f : pulled["files"])
      if (f["path"] == "model.safetensors") resumed += f["resumed_from"] == 300000;
    CHECK(resumed == 1);
    CHECK_FALSE(fs::exists(partial));
    CHECK(sha256_hex(io::file_read(repo_dir(home) / "blobs" / sha)) == sha);
    CHECK(run_hearth("inspect -m " + kRepo, hf_env(home, hub)).code == 0);
  }
}

TEST_CASE("a checksum mismatch is exit 4 and leaves no file in blobs or snapshots", "[cli][pull]") {
  FakeHub hub(fake_repos());
  for (const std::string name : {"model.safetensors", "tokenizer.json"}) {  // an LFS sha256, a git blob id
    INFO(name);
    const fs::path home = fresh_home("corrupt");
    hub.corrupt_file = name;
    auto r = run_hearth("--json pull " + kRepo, hf_env(home, hub));
    CHECK(r.code == 4);
    CHECK(r.err.find("checksum mismatch") != std::string::npos);
    CHECK(r.err.find(name) != std::string::npos);
    CHECK(nlohmann::json::parse(r.out)["error"]["exit_code"] == 4);
    const std::string etag = test::etag_of(file_named(name));
    for (const auto& blob : names_in(repo_dir(home) / "blobs")) CHECK(blob.find(etag) == std::string::npos);
    CHECK_FALSE(fs::exists(fs::symlink_status(repo_dir(home) / "snapshots" / kC1 / name)));
    CHECK_FALSE(fs::exists(repo_dir(home) / "refs" / "main"));
  }
}

TEST_CASE("the Hub's 401, 403 and 404 replies give exit codes and say what to do", "[cli][pull]") {
  FakeHub hub(fake_repos());
  const fs::path home = fresh_home("errors");
  SECTION("a private repo without HF_TOKEN, and with a wrong one") {
    hub.token = "hf_right";
    auto none = run_hearth("pull " + kRepo, hf_env(home, hub));
    CHECK(none.code == 2);
    CHECK(none.err.find(kRepo) != std::string::npos);
    CHECK(none.err.find("set HF_TOKEN") != std::string::npos);
    auto wrong = run_hearth("pull " + kRepo, hf_env(home, hub, "hf_wrong"));
    CHECK(wrong.code == 2);
    CHECK(wrong.err.find("HTTP 401") != std::string::npos);
  }
  SECTION("a gated repo: accept its conditions") {
    hub.gated_repo = kRepo;
    auto r = run_hearth("pull " + kRepo, hf_env(home, hub, "hf_any"));
    CHECK(r.code == 2);
    CHECK(r.err.find("accept its conditions at " + hub.endpoint() + "/" + kRepo) != std::string::npos);
    CHECK(r.err.find("config.json") != std::string::npos);  // names the file
  }
  SECTION("no such repo, revision or file") {
    auto repo = run_hearth("pull nobody/missing", hf_env(home, hub));
    CHECK(repo.code == 3);
    CHECK(repo.err.find("nobody/missing") != std::string::npos);
    CHECK(repo.err.find("not found") != std::string::npos);
    auto rev = run_hearth("pull " + kRepo + "@v9", hf_env(home, hub));
    CHECK(rev.code == 3);
    CHECK(rev.err.find("no such revision") != std::string::npos);
    auto include = run_hearth("pull " + kRepo + " --include '*.bin'", hf_env(home, hub));
    CHECK(include.code == 2);
    CHECK(include.err.find("'*.bin'") != std::string::npos);
    CHECK(include.err.find("model.safetensors") != std::string::npos);  // lists what there is
    CHECK(run_hearth("pull not-a-name", hf_env(home, hub)).code == 2);
    CHECK(run_hearth("pull " + kRepo + "@main --revision v2", hf_env(home, hub)).code == 2);
  }
  SECTION("an unreachable Hub") {
    auto r = run_hearth("pull --retries 0 " + kRepo,
                        "env -u HF_HUB_CACHE HF_HOME=" + quote(home) + " HF_ENDPOINT=http://127.0.0.1:9");
    CHECK(r.code == 3);
    CHECK(r.err.find("127.0.0.1:9") != std::string::npos);
  }
}

TEST_CASE("HF_TOKEN goes to the Hub as a bearer token and not to the CDN it redirects to", "[cli][pull]") {
  FakeHub hub(fake_repos());
  hub.token = "hf_secret123";
  const fs::path home = fresh_home("token");
  auto r = run_hearth("pull " + kRepo, hf_env(home, hub, "hf_secret123"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  int hub_requests = 0, cdn_requests = 0;
  for (const auto& s : hub.seen()) {
    INFO(s.server << " " << s.path);
    if (s.server == "hub") {
      ++hub_requests;
      CHECK(s.authorization == "Bearer hf_secret123");
    } else {
      ++cdn_requests;
      CHECK(s.authorization.empty());
    }
  }
  CHECK(hub_requests >= 6);
  CHECK(cdn_requests == 1);
}

TEST_CASE("hearth list shows cached models, hearth rm removes a snapshot and the blobs only it used", "[cli][pull]") {
  FakeHub hub(fake_repos());
  const fs::path home = fresh_home("listrm");
  const std::string env = hf_env(home, hub);
  REQUIRE(run_hearth("pull " + kRepo, env).code == 0);
  REQUIRE(run_hearth("pull " + kRepo + "@v2", env).code == 0);
  auto gguf = run_hearth("pull " + kGgufRepo + " --include '*q4_k_m.gguf'", env);
  INFO(gguf.err);
  REQUIRE(gguf.code == 0);
  CHECK_FALSE(fs::exists(repo_dir(home, kGgufRepo) / "snapshots" / kC3 / "model-q8_0.gguf"));

  auto l = run_hearth("--json list '" + test::stories_dir().string() + "'", env);
  INFO(l.err);
  REQUIRE(l.code == 0);
  std::map<std::string, nlohmann::json> by_name;
  const auto listed = nlohmann::json::parse(l.out);
  for (const auto& m : listed["models"]) by_name[m["name"].get<std::string>()] = m;
  REQUIRE(by_name.count(kRepo));
  CHECK(by_name[kRepo]["refs"] == nlohmann::json{"main"});
  CHECK(by_name[kRepo]["commit"] == kC1);
  CHECK(by_name[kRepo]["model_type"] == "llama");
  CHECK(by_name[kRepo]["dtype"] == "F32");
  CHECK(by_name[kRepo]["parameters"] == 260032);
  REQUIRE(by_name.count(kRepo + "@v2"));
  REQUIRE(by_name.count(kGgufRepo));
  CHECK(by_name[kGgufRepo]["format"] == "gguf");
  CHECK(by_name[kGgufRepo]["dtype"] == "Q4_K_M");
  CHECK(by_name.count(test::stories_dir().string()));  // a given folder is listed too
  auto text = run_hearth("list", env);
  CHECK(text.out.find(kGgufRepo) != std::string::npos);
  CHECK(text.out.find("Q4_K_M") != std::string::npos);
  // A GGUF-only snapshot resolves to its one .gguf file.
  auto inspect = run_hearth("--json inspect -m " + kGgufRepo, env);
  INFO(inspect.err);
  CHECK(inspect.code == 0);

  // v2 shares every blob but config.json with main: removing it deletes one blob and keeps main working.
  auto rm = run_hearth("--json rm " + kRepo + "@v2", env);
  INFO(rm.err);
  REQUIRE(rm.code == 0);
  auto rj = nlohmann::json::parse(rm.out);
  CHECK(rj["blobs_removed"] == 1);
  CHECK(rj["refs"] == nlohmann::json{"v2"});
  CHECK(rj["repo_removed"] == false);
  CHECK_FALSE(fs::exists(repo_dir(home) / "snapshots" / kC2));
  CHECK(run_hearth("inspect -m " + kRepo, env).code == 0);
  CHECK(run_hearth("inspect -m " + kRepo + "@v2", env).code == 3);

  auto rm_main = run_hearth("rm " + kRepo, env);
  REQUIRE(rm_main.code == 0);
  CHECK_FALSE(fs::exists(repo_dir(home)));
  CHECK(run_hearth("list", env).out.find(kRepo + " ") == std::string::npos);

  // Only cached models: a folder of one's own is refused (and kept), an unknown name is not there to remove.
  auto own = run_hearth("rm '" + test::stories_dir().string() + "'", env);
  CHECK(own.code == 2);
  CHECK(own.err.find("not a model in the Hugging Face cache") != std::string::npos);
  CHECK(fs::exists(test::stories_dir() / "model.safetensors"));
  CHECK(run_hearth("rm nobody/nothing", env).code == 3);
  // A path inside the cache is accepted.
  CHECK(run_hearth("rm '" + (repo_dir(home, kGgufRepo) / "snapshots" / kC3).string() + "'", env).code == 0);
  CHECK_FALSE(fs::exists(repo_dir(home, kGgufRepo)));
}
