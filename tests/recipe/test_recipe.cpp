// Recipe parsing and validation: defaults, overrides, and errors that name the file, line and key.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "recipe/lora_recipe.h"
#include "test_paths.h"

using namespace hearth;
using Catch::Matchers::Contains;

namespace {

recipe::LoraRecipe parse(const std::string& yaml, std::vector<std::string> overrides = {}) {
  return recipe::recipe_parse(yaml, "r.yaml", "/base", overrides);
}

const std::string kMinimal = "model: m\ndatasets: [d]\noutput_dir: out\n";

}  // namespace

TEST_CASE("a minimal recipe gets the documented defaults and resolves paths", "[recipe]") {
  auto r = parse(kMinimal);
  CHECK(r.model == "/base/m");
  CHECK(r.output_dir == "/base/out");
  REQUIRE(r.datasets.size() == 1);
  CHECK(r.datasets[0].path == "/base/d");
  CHECK(r.datasets[0].weight == 1.0);
  CHECK(r.lora.rank == 8);
  CHECK(r.lora.target_modules == std::vector<std::string>{"q_proj", "k_proj", "v_proj", "o_proj"});
  CHECK(r.schedule.type == "cosine");
  CHECK(r.training.micro_batch_size == 4);
  CHECK(r.checkpoint.every == 50);
}

TEST_CASE("overrides use dotted keys and are validated like the file", "[recipe]") {
  auto r = parse(kMinimal, {"lora.rank=16", "training.max_time=1h30m", "lora.target_modules=[q, v, down]",
                            "optimizer.betas=[0.8, 0.95]"});
  CHECK(r.lora.rank == 16);
  CHECK(r.training.max_time == 5400);
  CHECK(r.lora.target_modules == std::vector<std::string>{"q_proj", "v_proj", "down_proj"});
  CHECK(r.optimizer.beta1 == 0.8);
  CHECK_THROWS_WITH(parse(kMinimal, {"lora.rnak=4"}), Contains("lora.rnak") && Contains("rank, alpha"));
  CHECK_THROWS_WITH(parse(kMinimal, {"lora.rank=-1"}), Contains("lora.rank") && Contains("1..4096"));
  // The error names the override, not a line of the file (it said "r.yaml:1" before).
  CHECK_THROWS_WITH(parse(kMinimal, {"lora.rank=-1"}), Contains("override 'lora.rank=-1'"));
  CHECK_THROWS_WITH(parse(kMinimal, {"lora.rank=-1"}), !Contains("r.yaml"));
  CHECK_THROWS_WITH(parse(kMinimal, {"lora.rnak=4"}), Contains("override 'lora.rnak=4'"));
  // An error in the file next to an override still names the file's line.
  CHECK_THROWS_WITH(parse(kMinimal + "training:\n  micro_batch_size: lots\n", {"lora.rank=8"}),
                    Contains("r.yaml:5") && Contains("training.micro_batch_size"));
  CHECK_THROWS_AS(parse(kMinimal, {"noequals"}), ConfigError);
  // A recipe whose top level is a scalar or a list: yaml-cpp's BadSubscript escaped (found by fuzz_recipe).
  CHECK_THROWS_WITH(parse("just text\n", {"training.seed=7"}),
                    Contains("override 'training.seed=7'") && Contains("top level is not a mapping"));
  CHECK_THROWS_AS(parse("[a, b]\n", {"lora.rank=4"}), ConfigError);
}

TEST_CASE("recipe errors carry the file and line", "[recipe]") {
  SECTION("unknown top-level key lists the valid ones") {
    CHECK_THROWS_WITH(parse(kMinimal + "learning_rate: 1\n"),
                      Contains("r.yaml:4") && Contains("learning_rate") && Contains("optimizer") && Contains("lora"));
  }
  SECTION("wrong type") {
    CHECK_THROWS_WITH(parse(kMinimal + "training:\n  micro_batch_size: lots\n"),
                      Contains("r.yaml:5") && Contains("training.micro_batch_size") && Contains("lots"));
  }
  SECTION("out of range") {
    CHECK_THROWS_WITH(parse(kMinimal + "optimizer:\n  lr: 5\n"), Contains("r.yaml:5") && Contains("optimizer.lr"));
  }
  SECTION("bad enum") {
    CHECK_THROWS_WITH(parse(kMinimal + "schedule:\n  type: step\n"),
                      Contains("schedule.type") && Contains("constant, linear or cosine"));
  }
  SECTION("unknown target module") {
    CHECK_THROWS_WITH(parse(kMinimal + "lora:\n  target_modules: [q, qkv]\n"), Contains("qkv"));
  }
  SECTION("missing required keys") {
    CHECK_THROWS_WITH(parse("datasets: [d]\noutput_dir: o\n"), Contains("model"));
    CHECK_THROWS_WITH(parse("model: m\noutput_dir: o\n"), Contains("datasets"));
  }
  SECTION("both warmup forms") {
    CHECK_THROWS_WITH(parse(kMinimal + "schedule:\n  warmup_steps: 3\n  warmup_ratio: 0.1\n"), Contains("not both"));
  }
  SECTION("a key that is a list or a mapping (yaml-cpp's BadConversion escaped; found by fuzz_recipe)") {
    CHECK_THROWS_WITH(parse(kMinimal + "? [a, b]\n: 1\n"), Contains("r.yaml:4") && Contains("plain words"));
    CHECK_THROWS_WITH(parse(kMinimal + "lora:\n  {a: 1}: 2\n"), Contains("r.yaml:5") && Contains("lora"));
  }
  SECTION("bytes that are not UTF-8 (the resolved recipe's JSON could not be written; found by fuzz_recipe)") {
    CHECK_THROWS_WITH(parse(kMinimal + "lora:\n  rank: 8 # caf\xE9\n"), Contains("r.yaml:5") && Contains("UTF-8"));
    CHECK_THROWS_WITH(parse("model: m\xFF\ndatasets: [d]\noutput_dir: out\n"),
                      Contains("r.yaml:1") && Contains("0xFF"));
    CHECK_THROWS_WITH(parse(kMinimal, {"lora.rank=8", "output_dir=o\xC0\xAF"}), Contains("override 2 of 2"));
    CHECK(parse("model: \"caf\xC3\xA9 \xF0\x9F\xA6\x99\"\ndatasets: [d]\noutput_dir: out\n").model ==
          "/base/caf\xC3\xA9 \xF0\x9F\xA6\x99");
  }
  SECTION("invalid YAML") { CHECK_THROWS_WITH(parse("model: [unclosed\n"), Contains("r.yaml") && Contains("YAML")); }
  SECTION("a key written twice (yaml-cpp would keep the first silently)") {
    CHECK_THROWS_AS(parse(kMinimal + "optimizer:\n  lr: 1.0e-3\n  lr: 5.0e-4\n"), ConfigError);
    CHECK_THROWS_WITH(parse(kMinimal + "optimizer:\n  lr: 1.0e-3\n  lr: 5.0e-4\n"),
                      Contains("r.yaml:6") && Contains("optimizer.lr") && Contains("line 5"));
    CHECK_THROWS_WITH(parse(kMinimal + "model: other\n"), Contains("r.yaml:4") && Contains("'model'"));
  }
}

TEST_CASE("durations", "[recipe]") {
  CHECK(recipe::duration_parse("90", "k") == 90);
  CHECK(recipe::duration_parse("15m", "k") == 900);
  CHECK(recipe::duration_parse("2h", "k") == 7200);
  CHECK(recipe::duration_parse("1h30m10s", "k") == 5410);
  CHECK_THROWS_AS(recipe::duration_parse("soon", "k"), ConfigError);
  CHECK_THROWS_AS(recipe::duration_parse("", "k"), ConfigError);
  CHECK(recipe::duration_parse(" 1.5h 30s ", "k") == 5430);
  CHECK(recipe::duration_parse("15m\n", "k") == 900);  // trailing white space, a line break too (as with std::regex)
  CHECK_THROWS_AS(recipe::duration_parse("\xff"
                                         "15m",
                                         "k"),
                  ConfigError);  // not UTF-8
  CHECK_THROWS_AS(recipe::duration_parse(std::string(400, '9'), "k"),
                  ConfigError);  // beyond a double (was out_of_range)
}

TEST_CASE("every bundled recipe parses", "[recipe]") {
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(test::source_dir() / "recipes"))
    if (e.path().extension() == ".yaml") {
      INFO(e.path());
      CHECK_NOTHROW(recipe::recipe_load(e.path()));
      ++n;
    }
  CHECK(n >= 10);
}

TEST_CASE("training identity ignores bookkeeping keys but not training ones", "[recipe]") {
  auto a = parse(kMinimal);
  CHECK(a.training_identity() ==
        parse(kMinimal, {"output_dir=elsewhere", "checkpoint.every=7", "training.max_time=5m"}).training_identity());
  CHECK(a.training_identity() != parse(kMinimal, {"optimizer.lr=0.01"}).training_identity());
  CHECK(a.training_identity() != parse(kMinimal, {"training.max_steps=99"}).training_identity());
}

TEST_CASE("model may name a model in the Hugging Face cache, when no such path exists", "[recipe]") {
  const auto cache = std::filesystem::temp_directory_path() / ("hearth_test_recipe_hf_" + std::to_string(::getpid()));
  const std::string commit(40, 'c');
  const auto snap = cache / "models--org--tiny" / "snapshots" / commit;
  std::filesystem::create_directories(snap);
  std::filesystem::create_directories(cache / "models--org--tiny" / "refs");
  { std::ofstream(cache / "models--org--tiny" / "refs" / "main") << commit; }
  const char* old = std::getenv("HF_HUB_CACHE");
  const std::string saved = old ? old : "";
  ::setenv("HF_HUB_CACHE", cache.c_str(), 1);
  CHECK(parse("model: org/tiny\ndatasets: [d]\noutput_dir: out\n").model == snap.string());
  CHECK(parse("model: org/tiny@main\ndatasets: [d]\noutput_dir: out\n").model == snap.string());
  CHECK_THROWS_WITH(parse("model: org/other\ndatasets: [d]\noutput_dir: out\n"),
                    Contains("r.yaml: model:") && Contains("hearth pull org/other"));
  old ? (void)::setenv("HF_HUB_CACHE", saved.c_str(), 1) : (void)::unsetenv("HF_HUB_CACHE");
  std::filesystem::remove_all(cache);
}
