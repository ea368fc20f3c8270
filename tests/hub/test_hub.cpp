// The Hub client's pure parts: URLs, which files a pull takes, what the Hub's error replies turn into. Downloads
// themselves (resume, checksums, redirects, tokens) are tested end to end in tests/cli/test_pull.cpp.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "hub/http.h"
#include "hub/hub_api.h"
#include "hub/pull.h"

using namespace hearth;
using namespace hearth::hub;

namespace {

std::vector<std::string> paths(const std::vector<HubFile>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.path);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<HubFile> listing(std::initializer_list<const char*> names) {
  std::vector<HubFile> out;
  for (const char* n : names) out.push_back({n, 1, std::string(40, 'a'), ""});
  return out;
}

HttpReply reply(int status, const std::string& code = "") {
  HttpReply r;
  r.status = status;
  if (!code.empty()) r.headers.emplace("X-Error-Code", code);
  return r;
}

}  // namespace

TEST_CASE("url_parse splits origins and targets, url_encode escapes", "[hub]") {
  auto u = url_parse("https://huggingface.co/api/models/org/name?x=1");
  CHECK(u.origin() == "https://huggingface.co:443");
  CHECK(u.target == "/api/models/org/name?x=1");
  auto l = url_parse("http://127.0.0.1:8080");
  CHECK(l.port == 8080);
  CHECK(l.target == "/");
  CHECK(url_parse("http://[::1]:9/x").host == "::1");
  for (const char* bad : {"ftp://x", "huggingface.co", "http://", "http://h:port/", "http://user:pw@h/"}) {
    INFO(bad);
    CHECK_THROWS_AS(url_parse(bad), ConfigError);
  }
  CHECK(url_encode("refs/pr/1", false) == "refs%2Fpr%2F1");
  CHECK(url_encode("dir/a b+c.json", true) == "dir/a%20b%2Bc.json");
}

TEST_CASE("a pull takes config, tokenizer and one copy of the safetensors by default, or what --include names",
          "[hub]") {
  auto single = listing({"config.json", "model.safetensors", "consolidated.safetensors", "tokenizer.json", "README.md",
                         "model-q4.gguf", "onnx/model.safetensors", "special_tokens_map.json"});
  CHECK(paths(pull_files_select(single, {}, "o/n")) ==
        std::vector<std::string>{"config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json"});
  auto sharded = listing({"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                          "model.safetensors.index.json", "generation_config.json", "tokenizer_config.json"});
  CHECK(pull_files_select(sharded, {}, "o/n").size() == 6);  // the shards are narrowed to the index's after it is read
  CHECK(paths(pull_files_select(single, {"*.gguf", "config.json"}, "o/n")) ==
        std::vector<std::string>{"config.json", "model-q4.gguf"});
  CHECK(paths(pull_files_select(single, {"onnx/*"}, "o/n")) == std::vector<std::string>{"onnx/model.safetensors"});
  CHECK_THROWS_WITH(pull_files_select(single, {"*.bin"}, "o/n"), Catch::Contains("'*.bin': matches no file of o/n"));
  CHECK(pull_files_select(listing({"README.md"}), {}, "o/n").empty());
}

TEST_CASE("the Hub's error replies become exit codes and say what to do", "[hub]") {
  HubConfig anon{"https://hub.example", ""}, with_token{"https://hub.example", "hf_x"};
  auto code_of = [](auto&& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return static_cast<int>(e.exit_code());
    }
    return 0;
  };
  CHECK(code_of([&] { hub_error_throw(reply(401), anon, "o/n", "o/n"); }) == 2);
  CHECK_THROWS_WITH(hub_error_throw(reply(401), anon, "o/n", "o/n"), Catch::Contains("set HF_TOKEN"));
  CHECK(code_of([&] { hub_error_throw(reply(403), with_token, "o/n", "o/n"); }) == 2);
  CHECK_THROWS_WITH(hub_error_throw(reply(403, "GatedRepo"), with_token, "o/n", "file x of o/n"),
                    Catch::Contains("accept its conditions at https://hub.example/o/n"));
  CHECK(code_of([&] { hub_error_throw(reply(404, "RepoNotFound"), anon, "o/n", "o/n"); }) == 3);
  CHECK_THROWS_WITH(hub_error_throw(reply(404, "RevisionNotFound"), anon, "o/n", "o/n revision v9"),
                    Catch::Contains("no such revision"));
  CHECK_THROWS_WITH(hub_error_throw(reply(503), anon, "o/n", "o/n"), Catch::Contains("try again later"));
}
