// finetune-lora end to end, as cron would run it: loss falls; a run killed (-9) or interrupted (SIGINT)
// and resumed ends with an adapter bit-identical to an uninterrupted one; the lock; refusing a changed
// recipe; refusing a dataset made with another tokenizer; --dry-run of every bundled recipe; the report;
// generate --adapter.
#include <catch2/catch.hpp>

#include <cmath>
#include <csignal>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "core/sha256.h"
#include "finetune_fixture.h"
#include "io/json_file.h"

using namespace hearth;
using test::adapter_bytes;
using test::quote;
using test::run_hearth;
namespace fs = std::filesystem;

namespace {

fs::path work() { return test::scratch("finetune"); }

// A small dataset of story-like text, ingested with the bundled model's tokenizer (once per process).
fs::path dataset() {
  static fs::path dir = test::story_dataset(work(), 7, 40, 128, [](int) { return 6; });
  return dir;
}

fs::path recipe() {
  return test::stories_recipe(
      work(), dataset(), "q, k, v, o, gate, up, down",
      "optimizer: {lr: 3.0e-3, weight_decay: 0.01}\n"
      "schedule: {type: cosine, warmup_steps: 3}\n"
      "training: {micro_batch_size: 4, gradient_accumulation_steps: 2, max_steps: 40, seed: 3}\n"
      "eval: {every: 10}\ncheckpoint: {every: 5, keep_last: 2}\n");
}

// `hearth finetune-lora` on the test recipe into RUN (single thread: results must be bit-exact).
std::string finetune_args(const fs::path& run, const std::string& extra = "") {
  return test::finetune_args(recipe(), run, extra);
}

// The reference: one uninterrupted run (once per process).
const fs::path& reference_run() {
  static fs::path run = [] {
    fs::path r = work() / "run_ref";
    auto res = run_hearth("--json " + finetune_args(r));
    INFO(res.err);
    REQUIRE(res.code == 0);
    return r;
  }();
  return run;
}

}  // namespace

TEST_CASE("finetune-lora trains: loss falls, adapter published, metrics and report written", "[train][cli]") {
  const auto& run = reference_run();
  std::vector<double> losses;
  std::ifstream in(run / "metrics.jsonl");
  std::string line;
  bool has_eval = false;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
    has_eval = has_eval || j.contains("eval_loss");
  }
  REQUIRE(losses.size() == 40);
  CHECK(losses.back() < 0.5 * losses.front());
  CHECK(has_eval);
  CHECK(fs::is_symlink(run / "adapters" / "latest"));
  auto cfg = io::json_read(run / "adapters" / "latest" / "adapter_config.json");
  CHECK(cfg["peft_type"] == "LORA");
  CHECK(cfg["r"] == 4);
  // The base it was trained on, by the hash `cat config.json *.safetensors | sha256sum` gives (export checks it).
  auto base = io::json_read(run / "adapters" / "latest" / "hearth_base.json");
  CHECK(base["kind"] == "hf");
  CHECK(base["sha256"] == sha256_hex(io::file_read(test::stories_dir() / "config.json") +
                                     io::file_read(test::stories_dir() / "model.safetensors")));
  CHECK(io::json_read(run / "base.json")["sha256"] == base["sha256"]);  // cached for the next run
  auto rep = run_hearth("report " + quote(run));
  REQUIRE(rep.code == 0);
  auto html = io::file_read(run / "report.html");
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("polyline") != std::string::npos);
  CHECK(html.find("src=") == std::string::npos);                 // self-contained: no external assets
  CHECK(html.find("&quot;rank&quot;: 4") != std::string::npos);  // the settings, HTML-escaped
}

TEST_CASE("a run killed with -9 and resumed ends bit-identical to an uninterrupted run", "[train][cli]") {
  const std::string want = adapter_bytes(reference_run());
  fs::path run = work() / "run_kill";
  fs::remove_all(run);
  test::spawn_hearth(finetune_args(run), work());
  REQUIRE(test::wait_for(work() / "pid", 10));
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000010", 60));
  ::kill(test::read_int(work() / "pid"), SIGKILL);
  REQUIRE(test::wait_for(work() / "rc", 10));
  CHECK(test::read_int(work() / "rc") == 128 + SIGKILL);
  REQUIRE_FALSE(fs::exists(run / "adapters"));  // it really was cut short
  auto resumed = run_hearth("--json " + finetune_args(run));
  INFO(resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(nlohmann::json::parse(resumed.out)["resumed"] == true);
  CHECK(adapter_bytes(run) == want);
}

TEST_CASE("SIGINT finishes the step, checkpoints, exits 130, the resumed run is bit-identical", "[train][cli]") {
  const std::string want = adapter_bytes(reference_run());
  fs::path run = work() / "run_int";
  fs::remove_all(run);
  test::spawn_hearth(finetune_args(run), work());
  REQUIRE(test::wait_for(work() / "pid", 10));
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000005", 60));
  ::kill(test::read_int(work() / "pid"), SIGINT);
  REQUIRE(test::wait_for(work() / "rc", 30));
  CHECK(test::read_int(work() / "rc") == 130);
  REQUIRE_FALSE(fs::exists(run / "adapters"));
  auto resumed = run_hearth(finetune_args(run));
  REQUIRE(resumed.code == 0);
  CHECK(adapter_bytes(run) == want);
}

TEST_CASE("a second run on the same directory is refused while the first holds the lock", "[train][cli]") {
  fs::path run = work() / "run_lock";
  fs::remove_all(run);
  test::spawn_hearth(finetune_args(run, "training.max_steps=400"), work());
  REQUIRE(test::wait_for(run / "checkpoints" / "step-00000005", 60));
  auto second = run_hearth(finetune_args(run, "training.max_steps=400"));
  CHECK(second.code == 5);
  CHECK(second.err.find("another run") != std::string::npos);
  ::kill(test::read_int(work() / "pid"), SIGTERM);
  REQUIRE(test::wait_for(work() / "rc", 30));
  CHECK(test::read_int(work() / "rc") == 143);
}

TEST_CASE("resuming with a changed recipe is refused unless --force, --fresh starts over", "[train][cli]") {
  fs::path run = work() / "run_change";
  fs::remove_all(run);
  REQUIRE(run_hearth(finetune_args(run, "training.max_steps=6")).code == 0);
  auto changed = run_hearth(finetune_args(run, "training.max_steps=6 optimizer.lr=1.0e-2"));
  CHECK(changed.code == 2);
  CHECK(changed.err.find("--force") != std::string::npos);
  CHECK(changed.err.find("optimizer.lr: 0.003 -> 0.01") != std::string::npos);  // names what changed
  // --force resumes (with steps left to train: a finished run publishes nothing new).
  CHECK(run_hearth(finetune_args(run, "training.max_steps=9 optimizer.lr=1.0e-2 --force")).code == 0);
  CHECK(run_hearth(finetune_args(run, "training.max_steps=6 optimizer.lr=1.0e-2 --fresh")).code == 0);
  CHECK(fs::exists(run / "adapters" / "v0003"));
}

TEST_CASE("recipe and dataset problems exit 2 naming the key or file", "[train][cli]") {
  auto bad = run_hearth(finetune_args(work() / "run_bad", "lora.rnak=4"));
  CHECK(bad.code == 2);
  CHECK(bad.err.find("lora.rnak") != std::string::npos);
  CHECK(run_hearth("finetune-lora /nonexistent/recipe.yaml").code == 3);
  // output_dir naming a file: a usage error naming the key, caught by --dry-run too (it was an internal error, 1)
  io::atomic_write(work() / "a_file", "not a folder");
  for (const std::string dry : {"", " --dry-run"}) {
    auto file_out = run_hearth("--threads 1 finetune-lora " + quote(recipe()) + " output_dir=" +
                               (work() / "a_file").string() + dry);
    CHECK(file_out.code == 2);
    CHECK(file_out.err.find("output_dir") != std::string::npos);
  }
  CHECK(io::file_read(work() / "a_file") == "not a folder");
  // a dataset made with another tokenizer (GPT-2's) is refused
  fs::path gpt2_model = work() / "gpt2_model";
  fs::create_directories(gpt2_model);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(test::fixtures_dir() / "tokenizer-tests" / "gpt2" / f, gpt2_model / f,
                  fs::copy_options::overwrite_existing);
  fs::copy_file(test::stories_dir() / "config.json", gpt2_model / "config.json", fs::copy_options::overwrite_existing);
  fs::path other = work() / "data_gpt2";
  REQUIRE(run_hearth("ingest " + quote(work() / "src") + " --model " + quote(gpt2_model) + " --out " + quote(other) +
                     " --seq-len 128")
              .code == 0);
  auto mismatch = run_hearth(finetune_args(work() / "run_mm", "datasets=[" + other.string() + "]"));
  CHECK(mismatch.code == 2);
  CHECK(mismatch.err.find("another tokenizer") != std::string::npos);
}

TEST_CASE("every bundled recipe passes --dry-run with its model's real config", "[train][cli]") {
  // Each recipe's model folder is stood in for by its published config.json and the bundled tokenizer.
  const std::map<std::string, std::string> recipes = {
      {"smollm2/135m_lora.yaml", "SmolLM2-135M-Instruct"}, {"smollm2/360m_lora.yaml", "SmolLM2-360M-Instruct"},
      {"qwen2.5/0.5b_lora.yaml", "Qwen2.5-0.5B-Instruct"}, {"qwen2.5/1.5b_lora.yaml", "Qwen2.5-1.5B-Instruct"},
      {"qwen2.5/3b_lora.yaml", "Qwen2.5-3B-Instruct"},     {"llama3.2/1b_lora.yaml", "Llama-3.2-1B-Instruct"},
      {"llama3.2/3b_lora.yaml", "Llama-3.2-3B-Instruct"},  {"llama3.1/8b_lora.yaml", "Llama-3.1-8B-Instruct"},
      {"mistral/7b_lora.yaml", "Mistral-7B-Instruct-v0.3"}};
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
    // trainable = layers × r × Σ(out + in) over the 7 targets, from the config by hand
    auto c = io::json_read(model / "config.json");
    int64_t C = c["hidden_size"], F = c["intermediate_size"], L = c["num_hidden_layers"], H = c["num_attention_heads"],
            KV = c["num_key_value_heads"];
    int64_t hd = c.contains("head_dim") ? c["head_dim"].get<int64_t>() : C / H;
    int64_t r_ = plan["recipe"]["lora"]["rank"];
    int64_t per_layer = (H * hd + C) + 2 * (KV * hd + C) + (C + H * hd) + 2 * (F + C) + (C + F);
    CHECK(plan["trainable_parameters"] == L * r_ * per_layer);
  }
}

TEST_CASE("generate --adapter uses the trained adapter", "[train][cli]") {
  const auto& run = reference_run();
  std::string args = "--json generate --model " + quote(test::stories_dir()) +
                     " --prompt 'Tom had' --temperature 0 --max-tokens 12";
  auto base = run_hearth(args);
  auto tuned = run_hearth(args + " --adapter " + quote(run / "adapters" / "latest"));
  REQUIRE(base.code == 0);
  REQUIRE(tuned.code == 0);
  auto t = nlohmann::json::parse(tuned.out)["text"].get<std::string>();
  CHECK(nlohmann::json::parse(base.out)["text"] != t);
  // trained on "<name> had <thing>." stories, it continues with one of those things
  bool learned = t.find("ball") != std::string::npos || t.find("dog") != std::string::npos ||
                 t.find("cat") != std::string::npos || t.find("kite") != std::string::npos;
  CHECK(learned);
  CHECK(run_hearth(args + " --adapter /nonexistent/adapter").code == 3);
}

TEST_CASE("gradient checkpointing gives the same adapter bit for bit, bfloat16 training runs", "[train][cli]") {
  fs::path plain = work() / "run_gc0", recompute = work() / "run_gc1", bf16 = work() / "run_bf16";
  for (const auto& p : {plain, recompute, bf16}) fs::remove_all(p);
  REQUIRE(run_hearth(finetune_args(plain, "training.max_steps=6")).code == 0);
  REQUIRE(run_hearth(finetune_args(recompute, "training.max_steps=6 training.gradient_checkpointing=true")).code == 0);
  CHECK(adapter_bytes(plain) == adapter_bytes(recompute));  // dropout on: the recompute replays the same masks
  auto r = run_hearth("--json " + finetune_args(bf16, "training.max_steps=12 training.dtype=bfloat16"));
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(std::isfinite(j["train_loss"].get<double>()));
  CHECK(j["eval_loss"].get<double>() < 1.5);  // the base model's loss on this data is ~1.8
  // LoRA weights stay float32 in bfloat16 training
  CHECK(io::file_read(bf16 / "adapters" / "latest" / "adapter_model.safetensors").find("\"F32\"") != std::string::npos);
}

TEST_CASE("a checkpoint that cannot be written (disk full) leaves no temporaries, and the retry succeeds",
          "[train][cli]") {
  // The file-size limit makes every write past 64 KiB fail with EFBIG, as a full disk fails with ENOSPC: the
  // optimizer state of the first checkpoint (step 5) cannot be written.
  fs::path run = work() / "run_full";
  fs::remove_all(run);
  const std::string args = finetune_args(run, "training.max_steps=6 checkpoint.every=5");
  auto full = run_hearth(args, "ulimit -f 64;");
  INFO(full.err);
  CHECK(full.code == 5);
  auto temporaries = [&] {
    std::vector<std::string> names;
    for (const char* sub : {"checkpoints", "adapters"})
      if (fs::exists(run / sub))
        for (const auto& e : fs::directory_iterator(run / sub))
          if (e.path().filename().string().rfind(".tmp", 0) == 0) names.push_back(e.path().string());
    return names;
  };
  CHECK(temporaries().empty());
  // A temporary left by a process that died mid-write (kill -9) is swept by the next run too.
  fs::create_directories(run / "checkpoints" / ".tmp-step-00000005-999999");
  io::atomic_write(run / "checkpoints" / ".tmp-step-00000005-999999" / "optimizer.safetensors", std::string(1000, 'x'));
  auto retry = run_hearth(args);
  INFO(retry.err);
  CHECK(retry.code == 0);
  CHECK(temporaries().empty());
  CHECK(fs::exists(run / "adapters" / "latest" / "adapter_model.safetensors"));
}

TEST_CASE("a validation split with no target tokens turns evaluation off instead of scoring -1", "[train][cli]") {
  // Dataset A: stories (all tokens are targets), no validation split. Dataset B: chats whose long user turn fills
  // seq_len, so the assistant turn is cut off — sequences with no targets — half of them held out for validation.
  const fs::path a_src = work() / "notargets_a", b_src = work() / "notargets_b";
  fs::create_directories(a_src);
  fs::create_directories(b_src);
  for (int i = 0; i < 30; ++i)
    io::atomic_write(a_src / ("s" + std::to_string(i) + ".txt"),
                     "Tom had a red ball number " + std::to_string(i) + ". Lily was happy and played all day.");
  std::string chats;
  for (int i = 0; i < 40; ++i) {
    std::string user;
    for (int k = 0; k < 8; ++k) user += "the cat number " + std::to_string(i) + " saw the dog and the bird in the park ";
    chats += nlohmann::json{{"messages", {{{"role", "user"}, {"content", user}}, {{"role", "assistant"}, {"content", "Yes."}}}}}
                 .dump() +
             "\n";
  }
  io::atomic_write(b_src / "chats.jsonl", chats);
  const fs::path a = work() / "notargets_da", b = work() / "notargets_db", run = work() / "run_notargets";
  const std::string model = " --model " + quote(test::stories_dir()) + " --seq-len 64";
  REQUIRE(run_hearth("ingest " + quote(a_src) + model + " --out " + quote(a) + " --val-fraction 0").code == 0);
  auto ingest_b = run_hearth("--json ingest " + quote(b_src) + model + " --out " + quote(b) + " --val-fraction 0.5");
  REQUIRE(ingest_b.code == 0);
  REQUIRE(io::json_read(b / "manifest.json")["splits"]["validation"]["target_tokens"] == 0);
  REQUIRE(io::json_read(b / "manifest.json")["splits"]["validation"]["sequences"] > 0);

  fs::remove_all(run);
  auto r = run_hearth("--json --threads 1 finetune-lora " + quote(recipe()) + " output_dir=" + run.string() +
                      " datasets=[" + a.string() + "," + b.string() + "] training.max_steps=12 eval.every=2 "
                      "eval.patience=1 checkpoint.every=100");
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto result = nlohmann::json::parse(r.out);
  CHECK(result["steps"] == 12);  // it stopped "early" at step 4 on eval_loss -1 before
  CHECK(result["stop_reason"] != "early_stopping");
  CHECK(r.err.find("no target tokens") != std::string::npos);
  CHECK(io::file_read(run / "metrics.jsonl").find("eval_loss") == std::string::npos);
}

TEST_CASE("a damaged newest checkpoint is set aside and the run resumes exactly from the one before", "[train][cli]") {
  // A finished reference run keeps step-35 and step-40. Damage step-40 (one byte of the optimizer state, its
  // safetensors header intact): the rerun must notice (checksum), resume from step-35, and end bit-identical.
  const std::string want = adapter_bytes(reference_run());
  fs::path run = work() / "run_damaged";
  fs::remove_all(run);
  fs::copy(reference_run(), run, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  fs::remove(run / ".lock");
  const fs::path opt = run / "checkpoints" / "step-00000040" / "optimizer.safetensors";
  REQUIRE(fs::exists(opt));
  REQUIRE(fs::exists(run / "checkpoints" / "step-00000035"));
  std::string bytes = io::file_read(opt);
  bytes[bytes.size() - 7] ^= 0x10;
  io::atomic_write(opt, bytes);
  auto r = run_hearth("--json " + finetune_args(run));
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.find("step-00000040") != std::string::npos);
  CHECK(r.err.find("checksum") != std::string::npos);
  CHECK(fs::exists(run / "checkpoints" / "corrupt-step-00000040"));
  CHECK(nlohmann::json::parse(r.out)["resumed"] == true);
  CHECK(adapter_bytes(run) == want);

  // Nothing valid left: exit 4 naming what was found, and --fresh starts over.
  for (const auto& e : fs::directory_iterator(run / "checkpoints"))
    if (e.path().filename().string().rfind("step-", 0) == 0) fs::resize_file(e.path() / "optimizer.safetensors", 10);
  auto none = run_hearth(finetune_args(run));
  CHECK(none.code == 4);
  CHECK(none.err.find("no valid checkpoint") != std::string::npos);
  CHECK(run_hearth(finetune_args(run, "--fresh")).code == 0);
}

TEST_CASE("training.max_time is a window per invocation, and a run that trains no step publishes nothing",
          "[train][cli]") {
  auto versions = [](const fs::path& run) {
    int n = 0;
    for (const auto& e : fs::directory_iterator(run / "adapters")) n += e.path().filename().string()[0] == 'v';
    return n;
  };
  // A nightly run with a time budget: each night trains for max_time from where the last one stopped (the time
  // used to count over all nights, so after the first every run trained 0 steps and republished the same adapter).
  const fs::path run = work() / "run_max_time";
  fs::remove_all(run);
  const std::string nightly = "training.max_steps=100000 training.max_time=1s";
  auto first = run_hearth("--json " + finetune_args(run, nightly));
  INFO(first.err);
  REQUIRE(first.code == 0);
  auto a = nlohmann::json::parse(first.out);
  CHECK(a["stop_reason"] == "max_time");
  CHECK(a["steps_trained"].get<int>() >= 1);
  CHECK(a["published"] == true);
  auto second = run_hearth("--json " + finetune_args(run, nightly));
  INFO(second.err);
  REQUIRE(second.code == 0);
  auto b = nlohmann::json::parse(second.out);
  CHECK(b["resumed"] == true);
  CHECK(b["stop_reason"] == "max_time");
  CHECK(b["steps_trained"].get<int>() >= 1);
  CHECK(b["steps"].get<int>() == a["steps"].get<int>() + b["steps_trained"].get<int>());
  CHECK(b["published"] == true);
  CHECK(versions(run) == 2);

  // A finished run run again: nothing to train, nothing published, and it says so.
  const fs::path done = work() / "run_complete";
  fs::remove_all(done);
  REQUIRE(run_hearth(finetune_args(done, "training.max_steps=3")).code == 0);
  const std::string before = adapter_bytes(done);
  auto again = run_hearth("--json " + finetune_args(done, "training.max_steps=3"));
  INFO(again.err);
  REQUIRE(again.code == 0);
  auto c = nlohmann::json::parse(again.out);
  CHECK(c["stop_reason"] == "complete");
  CHECK(c["steps_trained"] == 0);
  CHECK(c["published"] == false);
  CHECK(c["adapter_dir"].get<std::string>().find("v0001") != std::string::npos);
  CHECK(versions(done) == 1);
  CHECK(adapter_bytes(done) == before);
  CHECK(again.err.find("no step trained in this run (complete); nothing published") != std::string::npos);
}

TEST_CASE("training tells the truth: small data and overfitting are warned about, and the report says why it stopped",
          "[train][cli]") {
  // 64 sequences per micro-batch is more than the test dataset holds, and an epoch is then one step.
  const fs::path run = work() / "run_small";
  auto r = run_hearth("--json " + finetune_args(run, "training.max_steps=2 training.micro_batch_size=64 "
                                                     "training.gradient_accumulation_steps=1 eval.every=0"));
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["warnings"].size() == 2);
  CHECK_THAT(j["warnings"][0].get<std::string>(), Catch::Contains("fewer than one micro-batch (64)"));
  CHECK_THAT(j["warnings"][1].get<std::string>(), Catch::Contains("one epoch is 1 optimizer step"));
  CHECK_THAT(r.err, Catch::Contains("fewer than one micro-batch"));  // also logged
  auto record = io::json_read(run / "run.json");
  CHECK(record["result"]["stop_reason"] == "max_steps");
  CHECK(record["result"]["steps"] == 2);
  CHECK(record["plan"]["total_steps"] == 2);
  CHECK(record["datasets"][0]["path"] == dataset().string());
  REQUIRE(run_hearth("report " + quote(run)).code == 0);
  const auto html = io::file_read(run / "report.html");
  CHECK_THAT(html, Catch::Contains("<td>stop reason</td><td>max_steps</td>"));
  CHECK_THAT(html, Catch::Contains("<td>steps done</td><td>2 of 2 planned"));
  CHECK_THAT(html, Catch::Contains("fewer than one micro-batch"));
  // The bundled reference recipe has data enough for its micro-batch: no such warning there.
  auto plan = run_hearth("--json finetune-lora " + quote(recipe()) + " --dry-run output_dir=" + (work() / "dry").string());
  REQUIRE(plan.code == 0);
  for (const auto& w : nlohmann::json::parse(plan.out)["warnings"])
    CHECK_THAT(w.get<std::string>(), !Catch::Contains("micro-batch"));
}
