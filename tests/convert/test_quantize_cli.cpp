// `hearth quantize` end to end, as a user runs it: the --json summary, the file it writes (equal to
// llama-quantize's), a GGUF source (tokenizer carried over), a real model whose rows need fallbacks (stories260K,
// loaded back and compared with the original), and the documented exit codes.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli_util.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "kq256.h"
#include "model/causal_lm.h"
#include "model/gguf_model.h"

using namespace hearth;
using test::quote;
using test::run_hearth;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path dir() { return test::scratch("quantize"); }

nlohmann::json json_of(const test::Run& r) {
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE_FALSE(r.out.empty());
  return nlohmann::json::parse(r.out);
}

std::string data_section(const fs::path& p) {
  auto f = io::GgufFile::open(p);
  return io::file_read(p).substr(f->data_offset());
}

}  // namespace

TEST_CASE("hearth quantize --json: summary fields, and llama-quantize's bytes", "[convert][cli]") {
  const auto out = dir() / "kq256-q4_k_m.gguf";
  auto r = run_hearth("--json quantize --model " + quote(test::kq256_dir() / "hf") + " --type q4_k_m --out " +
                      quote(out) + " --threads 2");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = json_of(r);
  CHECK(j["out"] == out.string());
  CHECK(j["source"] == "hf");
  CHECK(j["type"] == "q4_k_m");
  CHECK(j["file_type"] == 15);
  CHECK(j["architecture"] == "llama");
  CHECK(j["tensors"] == 20);
  CHECK(j["parameters"] == 1312000);
  CHECK(j["bytes"] == fs::file_size(out));
  CHECK(j["types"] == nlohmann::json({{"F32", 5}, {"Q4_K", 12}, {"Q6_K", 3}}));
  CHECK(j["fallbacks"].empty());
  CHECK(j["tokenizer_embedded"] == true);
  CHECK(j["bits_per_weight"].get<double>() == Approx(8.0 * j["tensor_bytes"].get<double>() / 1312000));
  CHECK(j["seconds"].get<double>() >= 0);
  CHECK(data_section(out) == data_section(test::kq256_dir() / "model-q4_k_m.gguf"));
  // The tokenizer written from hf/tokenizer.json equals what llama.cpp's converter wrote, key for key.
  auto mine = io::GgufFile::open(out), theirs = io::GgufFile::open(test::kq256_dir() / "model-q4_k_m.gguf");
  int compared = 0;
  for (const auto& kv : theirs->metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0) continue;
    INFO(kv.key);
    const io::GgufValue* v = mine->find(kv.key);
    REQUIRE(v);
    CHECK(*v == kv.value);
    ++compared;
  }
  CHECK(compared >= 5);

  // Without --json: a short human summary on stdout.
  auto text = run_hearth("quantize --model " + quote(test::kq256_dir() / "hf") + " --type Q8_0 --out " + quote(out));
  CHECK(text.code == 0);
  CHECK_THAT(text.out, Contains("q8_0 (llama, file type 7), 20 tensors") && Contains("types: F32 5, Q8_0 15"));
  fs::remove(out);
}

TEST_CASE("hearth quantize from an F16 GGUF keeps its tokenizer metadata", "[convert][cli]") {
  const auto src = test::kq256_dir() / "model-f16.gguf";
  const auto out = dir() / "from-f16-q8_0.gguf";
  auto r = run_hearth("--json quantize --model " + quote(src) + " --type q8_0 --out " + quote(out));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = json_of(r);
  CHECK(j["source"] == "gguf");
  CHECK(j["tokenizer_embedded"] == true);
  auto a = io::GgufFile::open(out), b = io::GgufFile::open(src);
  CHECK(a->get_string("general.name") == b->get_string("general.name"));
  for (const auto& kv : b->metadata())
    if (kv.key.rfind("tokenizer.", 0) == 0) {
      INFO(kv.key);
      REQUIRE(a->find(kv.key));
      CHECK(*a->find(kv.key) == kv.value);
    }
  fs::remove(out);
}

TEST_CASE("hearth quantize on stories260K: Q5_0/Q8_0/F16 fallbacks, and the model still computes", "[convert][cli]") {
  // hidden 64 and FFN 172 are not multiples of 256 (nor 172 of 32): llama.cpp's fallbacks apply.
  const auto out = dir() / "stories-q4_k_m.gguf";
  auto r = run_hearth("--json quantize --model " + quote(test::stories_dir()) + " --type q4_k_m --out " + quote(out));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = json_of(r);
  CHECK(j["types"] == nlohmann::json({{"F16", 5}, {"F32", 11}, {"Q5_0", 28}, {"Q8_0", 3}}));
  CHECK(j["fallbacks"].size() == 35);
  CHECK(j["fallbacks"][0] == nlohmann::json({{"tensor", "blk.0.attn_k.weight"}, {"wanted", "Q4_K"}, {"used", "Q5_0"}}));

  // Logits of the GGUF models against the original model's (a wrong q/k row order or tensor mapping gives errors
  // of the order of the logits' spread).
  auto hf = model::causal_lm_load(test::stories_dir());
  c10::InferenceMode guard;
  auto tokens = torch::tensor(std::vector<int64_t>{1, 403, 407, 261, 378, 287, 260, 281, 300, 77}).unsqueeze(0);
  auto pos = torch::arange(tokens.size(1)).unsqueeze(0);
  auto want = hf->forward(tokens, pos, {}, nullptr);
  const double spread = want.std().item<double>();
  for (auto [type, rel] : {std::pair{"q4_k_m", 0.15}, std::pair{"f16", 1e-3}, std::pair{"q8_0", 2e-2}}) {
    INFO(type);
    if (std::string(type) != "q4_k_m")
      REQUIRE(run_hearth("quantize --model " + quote(test::stories_dir()) + " --type " + type + " --out " + quote(out))
                  .code == 0);
    auto got = model::gguf_model_load(out)->forward(tokens, pos, {}, nullptr);
    const double err = (got - want).abs().mean().item<double>();
    CAPTURE(spread, err);
    CHECK(err < rel * spread);
  }
  fs::remove(out);
}

TEST_CASE("hearth quantize exit codes", "[convert][cli]") {
  const auto out = dir() / "x.gguf";
  const std::string hf = quote(test::kq256_dir() / "hf");

  auto unknown = run_hearth("--json quantize --model " + hf + " --type q5_k_s --out " + quote(out));
  CHECK(unknown.code == 2);
  CHECK_THAT(unknown.err,
             Contains("--type") && Contains("q5_k_s") && Contains("f32, f16, bf16, q8_0, q4_0, q6_k, q4_k_m"));
  CHECK(json_of(unknown)["error"]["exit_code"] == 2);

  CHECK(run_hearth("quantize --model " + hf + " --out " + quote(out)).code == 2);  // --type missing

  auto quantized = run_hearth("--json quantize --model " + quote(test::kq256_dir() / "model-q4_0.gguf") +
                              " --type q4_k_m --out " + quote(out));
  CHECK(quantized.code == 4);
  CHECK_THAT(quantized.err, Contains("already quantized"));
  CHECK(json_of(quantized)["error"]["exit_code"] == 4);

  auto missing = run_hearth("quantize --model " + quote(dir() / "nope") + " --type q8_0 --out " + quote(out));
  CHECK(missing.code == 3);
  CHECK_THAT(missing.err, Contains("--model") && Contains("nope"));

  // A folder with config.json but broken weights, and a file that is not a GGUF.
  const auto broken = dir() / "broken";
  fs::create_directories(broken);
  fs::copy_file(test::kq256_dir() / "hf" / "config.json", broken / "config.json", fs::copy_options::overwrite_existing);
  io::atomic_write(broken / "model.safetensors", "not safetensors");
  CHECK(run_hearth("quantize --model " + quote(broken) + " --type q8_0 --out " + quote(out)).code == 4);
  CHECK(run_hearth("quantize --model " + quote(broken / "config.json") + " --type q8_0 --out " + quote(out)).code == 4);
  CHECK_FALSE(fs::exists(out));

  // The output must not be the source.
  const auto copy = dir() / "f16.gguf";
  fs::copy_file(test::kq256_dir() / "model-f16.gguf", copy, fs::copy_options::overwrite_existing);
  auto same = run_hearth("quantize --model " + quote(copy) + " --type q8_0 --out " + quote(copy));
  CHECK(same.code == 2);
  CHECK_THAT(same.err, Contains("--out"));
  fs::remove_all(broken);
  fs::remove(copy);
}
