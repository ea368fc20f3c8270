// QLoRA end to end with `hearth finetune-lora` on the bundled stories260K: a quantize_base q8_0 run's loss curve stays
// within 2% of the float32 LoRA run's at every logged step (issue #12); kill -9 and resume is bit-identical, and so is
// gradient checkpointing; a GGUF base (made by `hearth quantize`) trains and publishes a PEFT adapter that loads on
// the unquantized Hugging Face base; recipe errors name the key; --dry-run counts the quantized bytes.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "finetune_fixture.h"
#include "io/json_file.h"

using namespace hearth;
using test::adapter_bytes;
using test::quote;
using test::run_hearth;
namespace fs = std::filesystem;

namespace {

fs::path work() { return test::scratch("qlora"); }

// Story-like text ingested with the bundled model's tokenizer (once per process).
fs::path dataset() {
  static fs::path dir = test::story_dataset(work(), 11, 24, 128, [](int) { return 6; });
  return dir;
}

fs::path recipe() {
  return test::stories_recipe(
      work(), dataset(), "q, k, v, o, gate, up, down",
      "optimizer: {lr: 3.0e-3}\n"
      "schedule: {type: cosine, warmup_steps: 2}\n"
      "training: {micro_batch_size: 4, gradient_accumulation_steps: 2, max_steps: 16, seed: 3}\n"
      "checkpoint: {every: 4, keep_last: 2}\n");
}

std::string args(const fs::path& run, const std::string& extra = "") {
  return test::finetune_args(recipe(), run, extra);
}

std::vector<double> losses(const fs::path& run) { return test::metric_values(run, "loss"); }

// One uninterrupted q8_0 QLoRA run (once per process): the reference for resume.
const fs::path& qlora_run() {
  static fs::path run = [] {
    fs::path r = work() / "run_q8";
    fs::remove_all(r);
    auto res = run_hearth(args(r, "quantize_base=q8_0"));
    INFO(res.err);
    REQUIRE(res.code == 0);
    return r;
  }();
  return run;
}

}  // namespace

TEST_CASE("a q8_0 QLoRA run's loss stays within 2% of the float32 LoRA run's at every logged step", "[train][qlora]") {
  fs::path f32 = work() / "run_f32";
  fs::remove_all(f32);
  auto r = run_hearth(args(f32));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto want = losses(f32), got = losses(qlora_run());
  REQUIRE(want.size() == 16);
  REQUIRE(got.size() == want.size());
  CHECK(want.back() < 0.8 * want.front());  // it does learn
  bool differ = false;
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("step " << i + 1 << ": float32 " << want[i] << ", q8_0 " << got[i]);
    CHECK(std::abs(got[i] - want[i]) <= 0.02 * want[i]);
    differ = differ || got[i] != want[i];
  }
  CHECK(differ);  // the base really was quantized
  auto j = io::json_read(qlora_run() / "recipe.resolved.json");
  CHECK(j["quantize_base"] == "q8_0");
}

TEST_CASE("a QLoRA run killed with -9 resumes bit-identical, and gradient checkpointing changes no bit",
          "[train][qlora]") {
  const std::string want = adapter_bytes(qlora_run());
  fs::path run = work() / "run_q8_kill";
  fs::remove_all(run);
  test::spawn_hearth(args(run, "quantize_base=q8_0"), work());
  REQUIRE(test::wait_for(work() / "pid", 10));
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000008", 60));
  ::kill(test::read_int(work() / "pid"), SIGKILL);
  REQUIRE(test::wait_for(work() / "rc", 10));
  REQUIRE_FALSE(fs::exists(run / "adapters"));
  auto resumed = run_hearth("--json " + args(run, "quantize_base=q8_0"));
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(nlohmann::json::parse(resumed.out)["resumed"] == true);
  CHECK(adapter_bytes(run) == want);

  fs::path gc = work() / "run_q8_gc";
  fs::remove_all(gc);
  REQUIRE(run_hearth(args(gc, "quantize_base=q8_0 training.gradient_checkpointing=true")).code == 0);
  CHECK(adapter_bytes(gc) == want);
  // Changing the base's quantization changes training: a resume is refused, naming the key.
  auto changed = run_hearth(args(run, "quantize_base=q4_0 training.max_steps=20"));
  CHECK(changed.code == 2);
  CHECK(changed.err.find("quantize_base") != std::string::npos);
}

TEST_CASE("a GGUF base trains through its blocks and the PEFT adapter loads on the unquantized base",
          "[train][qlora]") {
  const fs::path gguf = work() / "stories-q8_0.gguf";
  auto q = run_hearth("quantize --model " + quote(test::stories_dir()) + " --type q8_0 --out " + quote(gguf));
  INFO(q.err);
  REQUIRE(q.code == 0);
  const fs::path run = work() / "run_gguf";
  fs::remove_all(run);
  auto r = run_hearth("--json " + args(run, "model=" + gguf.string()));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto l = losses(run);
  REQUIRE(l.size() == 16);
  CHECK(l.back() < 0.8 * l.front());
  CHECK(io::json_read(run / "adapters" / "latest" / "hearth_base.json")["kind"] == "gguf");
  auto cfg = io::json_read(run / "adapters" / "latest" / "adapter_config.json");
  CHECK(cfg["peft_type"] == "LORA");
  CHECK(io::file_read(run / "adapters" / "latest" / "adapter_model.safetensors")
            .find("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight") != std::string::npos);
  // The adapter on the float32 Hugging Face base: it loads, and it changes what the model writes.
  const std::string gen = "--json generate --model " + quote(test::stories_dir()) +
                          " --prompt 'Tom had' --temperature 0 --max-tokens 12";
  auto base = run_hearth(gen), tuned = run_hearth(gen + " --adapter " + quote(run / "adapters" / "latest"));
  INFO(tuned.err);
  REQUIRE(base.code == 0);
  REQUIRE(tuned.code == 0);
  CHECK(nlohmann::json::parse(tuned.out)["text"] != nlohmann::json::parse(base.out)["text"]);

  // quantize_base on a GGUF: refused, naming the key.
  auto both = run_hearth(args(work() / "run_bad", "model=" + gguf.string() + " quantize_base=q8_0"));
  CHECK(both.code == 2);
  CHECK(both.err.find("quantize_base") != std::string::npos);
  // A dataset tokenized by another tokenizer (GPT-2's) is refused for a GGUF base too.
  const fs::path gpt2 = work() / "gpt2_model", other = work() / "data_gpt2";
  fs::create_directories(gpt2);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(test::fixtures_dir() / "tokenizer-tests" / "gpt2" / f, gpt2 / f,
                  fs::copy_options::overwrite_existing);
  fs::copy_file(test::stories_dir() / "config.json", gpt2 / "config.json", fs::copy_options::overwrite_existing);
  REQUIRE(run_hearth("ingest " + quote(work() / "src") + " --model " + quote(gpt2) + " --out " + quote(other) +
                     " --seq-len 128")
              .code == 0);
  auto mismatch = run_hearth(args(work() / "run_mm", "model=" + gguf.string() + " datasets=[" + other.string() + "]"));
  CHECK(mismatch.code == 2);
  CHECK(mismatch.err.find("another tokenizer") != std::string::npos);
  CHECK(mismatch.err.find("tokenizer.ggml.") != std::string::npos);
}

TEST_CASE("quantize_base accepts q8_0, q4_0, q4_k and --dry-run counts the quantized bytes", "[train][qlora]") {
  auto bad = run_hearth(args(work() / "run_bad_type", "quantize_base=q5_k"));
  CHECK(bad.code == 2);
  CHECK(bad.err.find("quantize_base") != std::string::npos);
  CHECK(bad.err.find("q8_0, q4_0 or q4_k") != std::string::npos);
  // Llama 3.1 8B's config stands in for the model (its weights are not needed for a plan).
  const fs::path model = work() / "cfg_llama8b";
  fs::create_directories(model);
  fs::copy_file(test::fixtures_dir() / "configs" / "Llama-3.1-8B-Instruct.json", model / "config.json",
                fs::copy_options::overwrite_existing);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(test::stories_dir() / f, model / f, fs::copy_options::overwrite_existing);
  auto c = io::json_read(model / "config.json");
  const double C = c["hidden_size"], F = c["intermediate_size"], L = c["num_hidden_layers"],
               H = c["num_attention_heads"], KV = c["num_key_value_heads"], V = c["vocab_size"];
  const double hd = C / H;
  // Matrices (all rows whole blocks of 32 and 256) and the rest (norms) by hand; the head is untied.
  const double matrices = L * (C * (H * hd + 2 * KV * hd) + H * hd * C + 3 * C * F) + 2 * V * C;
  const double rest = L * 2 * C + C;
  for (auto [type, bytes_per_32] : {std::pair{"q8_0", 34.0}, std::pair{"q4_0", 18.0}, std::pair{"q4_k", 144.0 / 8}}) {
    INFO(type);
    auto r = run_hearth("--json finetune-lora " + quote(recipe()) + " model=" + model.string() + " quantize_base=" +
                        type + " output_dir=" + (work() / "dry").string() + " training.seq_len=0 --dry-run");
    INFO(r.err);
    REQUIRE(r.code == 0);
    auto plan = nlohmann::json::parse(r.out);
    CHECK(plan["memory_estimate_bytes"]["weights"].get<double>() == Approx(matrices / 32 * bytes_per_32 + rest * 4));
    CHECK(plan["recipe"]["quantize_base"] == type);
  }
}

TEST_CASE("every bundled QLoRA recipe passes --dry-run with its model's real config", "[train][qlora]") {
  const std::map<std::string, std::string> recipes = {{"llama3.1/8b_qlora.yaml", "Llama-3.1-8B-Instruct"},
                                                      {"mistral/7b_qlora.yaml", "Mistral-7B-Instruct-v0.3"}};
  for (const auto& [file, name] : recipes) {
    INFO(file);
    fs::path model = work() / ("cfg_" + name);
    fs::create_directories(model);
    fs::copy_file(test::fixtures_dir() / "configs" / (name + ".json"), model / "config.json",
                  fs::copy_options::overwrite_existing);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"})
      fs::copy_file(test::stories_dir() / f, model / f, fs::copy_options::overwrite_existing);
    auto r = run_hearth("--json finetune-lora " + quote(test::source_dir() / "recipes" / file) +
                        " model=" + model.string() + " datasets=[" + dataset().string() + "] output_dir=" +
                        (work() / "dry").string() + " training.seq_len=0 training.device=cpu --dry-run");
    INFO(r.err);
    REQUIRE(r.code == 0);
    auto plan = nlohmann::json::parse(r.out);
    CHECK_FALSE(plan["recipe"]["quantize_base"].get<std::string>().empty());
    // A 4-bit base: well under a third of the float32 weights.
    CHECK(plan["memory_estimate_bytes"]["weights"].get<double>() < plan["base_parameters"].get<double>() * 4 / 3);
  }
}
