// hearth export end to end, as a user runs it: each format from the CLI, checked against what it must equal.
//
// - hf: hearth's logits on the merged folder = base + adapter logits (1e-4, float32), for an adapter on all seven
//   projections of stories260K (a tied-embedding model) with rslora off and on; sharded output (index.json) loads
//   to the same logits; tokenizer files byte-identical, torch_dtype set.
// - peft: the adapter bytes unchanged, base_model_name_or_path set, a model card; provenance from a run directory.
// - gguf-lora: llama.cpp's layout (keys, names, ne order), alpha = scale · r, q/k rows of B interleaved per
//   llama.cpp's permute (written here from the spec, not with hearth's function).
// - llama.cpp (node-llama-cpp 3.21.1, see llamacpp_ref.h): `export gguf --type f32` of base + an adapter trained by
//   finetune-lora here generates in
//   llama.cpp the 64 greedy ids `hearth generate --adapter` does; so does the base GGUF with the `gguf-lora` file.
// - ollama: the Modelfile is exactly the one lib/chat renders for the folder's files, template and SYSTEM.
// - errors: unknown format, misplaced flags, an existing --out, a mismatched or corrupt adapter, a file-size limit
//   hit mid-write (ulimit -f: EFBIG, as a full disk): documented exit codes and nothing half-written left behind.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "chat/ollama.h"
#include "cli_util.h"
#include "core/sha256.h"
#include "io/atomic_file.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "llamacpp_ref.h"
#include "model/causal_lm.h"
#include "model/config.h"
#include "model/lora.h"
#include "tiny_config.h"

using namespace hearth;
using test::quote;
using test::run_hearth;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using model::LoraTarget;

namespace {

fs::path dir() { return test::scratch("export"); }

const std::vector<LoraTarget> kAllTargets = {LoraTarget::kQ,    LoraTarget::kK,  LoraTarget::kV,   LoraTarget::kO,
                                             LoraTarget::kGate, LoraTarget::kUp, LoraTarget::kDown};

// A PEFT adapter for `config` with random A and B (a fresh adapter's B is zero and would merge to nothing).
fs::path random_adapter(const std::string& name, const model::ModelConfig& config, bool rslora, uint64_t seed,
                        const std::vector<LoraTarget>& targets = kAllTargets) {
  model::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.use_rslora = rslora;
  lc.targets = targets;
  lc.base_model = "stories260K";
  auto adapter = model::LoraAdapter::create(config, lc, seed);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 1);
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    for (auto t : targets) adapter.find(l, t)->B.normal_(0.0, 0.05, gen);
  const fs::path out = dir() / name;
  fs::remove_all(out);
  adapter.save(out);
  return out;
}

model::ModelConfig stories_config() { return model::config_load(test::stories_dir()); }

// Logits of `model` (optionally with an adapter) on two fixed rows of 12 tokens: [2, 12, V].
torch::Tensor logits(const fs::path& model, const fs::path& adapter = {}) {
  auto m = model::causal_lm_load(model);
  std::optional<model::LoraAdapter> a;
  if (!adapter.empty()) a = model::LoraAdapter::load(adapter, m->config());
  auto gen = at::detail::createCPUGenerator(11);
  torch::Tensor tokens = torch::randint(3, m->config().vocab_size, {2, 12}, gen, torch::kInt64);
  torch::Tensor positions = torch::arange(12, torch::kInt64).unsqueeze(0).expand({2, 12}).contiguous();
  model::ForwardOptions options;
  if (a) options.adapters = {&*a};
  torch::NoGradGuard no_grad;
  return m->forward(tokens, positions, torch::Tensor(), nullptr, options);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

nlohmann::json export_json(const std::string& args) {
  auto r = run_hearth("--json export " + args);
  INFO("hearth export " << args << "\nstderr: " << r.err);
  REQUIRE(r.code == 0);
  return nlohmann::json::parse(r.out);
}

std::string sha256_file(const fs::path& p) { return sha256_hex(io::file_read(p)); }

// Entries of `parent` whose names start with `prefix` (temporaries left behind would show up here).
std::vector<std::string> entries_with_prefix(const fs::path& parent, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(parent))
    if (e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path().filename().string());
  return out;
}

// An adapter really trained by `hearth finetune-lora` on stories260K (20 steps on a few short stories, all seven
// projections): RUN/adapters/latest, made once per process.
const fs::path& trained_adapter() {
  static const fs::path latest = [] {
    const fs::path src = dir() / "train-src", data = dir() / "train-data", run = dir() / "train-run";
    fs::create_directories(src);
    const char* names[] = {"Tom", "Lily", "Sam", "Mia"};
    const char* things[] = {"a red ball", "a big dog", "a small cat", "a blue kite"};
    for (int f = 0; f < 24; ++f)
      io::atomic_write(src / ("story" + std::to_string(f) + ".txt"),
                       std::string(names[f % 4]) + " had " + things[(f / 4) % 4] + ". " + names[(f + 1) % 4] +
                           " was happy and they played all day in the park.");
    auto r = run_hearth("ingest " + quote(src) + " --model " + quote(test::stories_dir()) + " --out " + quote(data) +
                        " --seq-len 64");
    REQUIRE(r.code == 0);
    io::atomic_write(dir() / "train.yaml",
                     "model: " + test::stories_dir().string() + "\ndatasets: [" + data.string() + "]\noutput_dir: " +
                         run.string() +
                         "\nlora: {rank: 4, alpha: 8, target_modules: [q, k, v, o, gate, up, down]}\n"
                         "optimizer: {lr: 1.0e-2}\ntraining: {micro_batch_size: 4, max_steps: 20, seed: 5}\n");
    r = run_hearth("--threads 1 finetune-lora " + quote(dir() / "train.yaml") + " --fresh");
    INFO(r.err);
    REQUIRE(r.code == 0);
    return run / "adapters" / "latest";
  }();
  return latest;
}

}  // namespace

TEST_CASE("export hf: the merged folder gives the logits of base + adapter", "[convert][export]") {
  const auto config = stories_config();
  REQUIRE(config.tie_word_embeddings);
  for (bool rslora : {false, true}) {
    INFO("rslora " << rslora);
    const fs::path adapter = random_adapter(rslora ? "adapter-rs" : "adapter", config, rslora, rslora ? 5 : 4);
    const fs::path out = dir() / (rslora ? "hf-rs" : "hf");
    fs::remove_all(out);
    auto s = export_json("hf --model " + quote(test::stories_dir()) + " --adapter " + quote(adapter) + " --out " +
                         quote(out));
    CHECK(s["format"] == "hf");
    CHECK(s["merged"] == true);
    CHECK(s["detail"]["dtype"] == "float32");  // the base's torch_dtype
    CHECK(s["detail"]["weight_files"] == nlohmann::json{"model.safetensors"});

    const torch::Tensor expected = logits(test::stories_dir(), adapter);
    const torch::Tensor merged = logits(out);
    CHECK(max_diff(merged, expected) < 1e-4);
    CHECK(max_diff(logits(test::stories_dir()), expected) > 1e-2);  // the adapter matters: the check can fail

    // Everything but the weights and config.json is copied unchanged; config.json differs only in torch_dtype.
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      CHECK(io::file_read(out / f) == io::file_read(test::stories_dir() / f));
    auto base_cfg = nlohmann::json::parse(io::file_read(test::stories_dir() / "config.json"));
    auto out_cfg = nlohmann::json::parse(io::file_read(out / "config.json"));
    base_cfg["torch_dtype"] = "float32";
    CHECK(out_cfg == base_cfg);
    // Provenance: hashes of what went in.
    auto prov = nlohmann::json::parse(io::file_read(out / "hearth_provenance.json"));
    CHECK(prov["adapter"]["sha256"] == sha256_hex(io::file_read(adapter / "adapter_config.json") +
                                                        io::file_read(adapter / "adapter_model.safetensors")));
    CHECK(prov["base"]["sha256"] == sha256_hex(io::file_read(test::stories_dir() / "config.json") +
                                                     io::file_read(test::stories_dir() / "model.safetensors")));
    CHECK(s["base_sha256"] == prov["base"]["sha256"]);
    CHECK_THAT(io::file_read(out / "README.md"), Contains("base_model:") && Contains("hearth_provenance.json"));
  }
}

TEST_CASE("export hf: sharded output and another dtype load to the same model", "[convert][export]") {
  const fs::path adapter = random_adapter("adapter-shard", stories_config(), false, 6);
  const fs::path out = dir() / "hf-sharded";
  fs::remove_all(out);
  auto s = export_json("hf --model " + quote(test::stories_dir()) + " --adapter " + quote(adapter) + " --out " +
                       quote(out) + " --max-shard-size 300KB");
  const auto files = s["detail"]["weight_files"].get<std::vector<std::string>>();
  REQUIRE(files.size() >= 3);  // ~1 MB of float32 weights
  CHECK(files.front() == "model-00001-of-0000" + std::to_string(files.size()) + ".safetensors");
  auto index = nlohmann::json::parse(io::file_read(out / "model.safetensors.index.json"));
  uint64_t total = 0;
  size_t tensors = 0;
  for (const auto& f : files) {
    auto shard = io::SafetensorsFile::open(out / f);
    uint64_t bytes = 0;
    for (const auto& t : shard->tensors()) {
      CHECK(index["weight_map"][t.name] == f);
      bytes += t.nbytes;
      ++tensors;
    }
    CHECK((bytes <= 300000 || shard->tensors().size() == 1));
    total += bytes;
  }
  CHECK(index["metadata"]["total_size"] == total);
  CHECK(index["weight_map"].size() == tensors);
  CHECK(max_diff(logits(out), logits(test::stories_dir(), adapter)) < 1e-4);

  const fs::path bf16 = dir() / "hf-bf16";
  fs::remove_all(bf16);
  export_json("hf --model " + quote(test::stories_dir()) + " --adapter " + quote(adapter) + " --out " + quote(bf16) +
              " --dtype bf16");
  CHECK(nlohmann::json::parse(io::file_read(bf16 / "config.json"))["torch_dtype"] == "bfloat16");
  const auto bf16_file = io::SafetensorsFile::open(bf16 / "model.safetensors");  // outlives the loop below
  for (const auto& t : bf16_file->tensors()) CHECK(t.dtype == io::Dtype::kBF16);
  const torch::Tensor reference = logits(out);
  // bfloat16 keeps 8 significant bits of each weight: within a few percent of the logits' range.
  CHECK(max_diff(logits(bf16), reference) < 0.03 * reference.abs().max().item<double>());
}

TEST_CASE("export peft: the adapter as PEFT loads it, with its run's provenance", "[convert][export]") {
  // A run directory as finetune-lora leaves it: recipe, metrics, a dataset manifest, adapters/latest -> v0001.
  const fs::path run = dir() / "run", data_dir = dir() / "dataset";
  fs::remove_all(run);
  fs::create_directories(run / "adapters");
  fs::create_directories(data_dir);
  io::atomic_write(data_dir / "manifest.json", R"({"schema_version": 1, "totals": {"documents": 3, "tokens": 99}})");
  io::atomic_write(run / "recipe.resolved.json",
                   nlohmann::json{{"model", test::stories_dir().string()},
                                  {"datasets", {{{"path", data_dir.string()}, {"weight", 1.0}}}}}
                       .dump());
  io::atomic_write(run / "metrics.jsonl",
                   "{\"step\": 1, \"loss\": 2.5}\n{\"step\": 2, \"loss\": 2.0}\n"
                   "{\"step\": 2, \"eval_loss\": 2.25}\n");
  const fs::path v1 = random_adapter("v0001", stories_config(), false, 7);
  fs::rename(v1, run / "adapters" / "v0001");
  fs::create_directory_symlink("v0001", run / "adapters" / "latest");

  const fs::path out = dir() / "peft";
  fs::remove_all(out);
  export_json("peft --model " + quote(test::stories_dir()) + " --adapter " + quote(run / "adapters" / "latest") +
              " --out " + quote(out));
  CHECK(io::file_read(out / "adapter_model.safetensors") ==
        io::file_read(run / "adapters" / "v0001" / "adapter_model.safetensors"));
  auto cfg = nlohmann::json::parse(io::file_read(out / "adapter_config.json"));
  CHECK(cfg["base_model_name_or_path"] == fs::absolute(test::stories_dir()).lexically_normal().string());
  CHECK(cfg["peft_type"] == "LORA");
  CHECK_NOTHROW(model::LoraAdapter::load(out, stories_config()));
  CHECK_THAT(io::file_read(out / "README.md"),
             Contains("library_name: peft") && Contains("PeftModel") && Contains("## Training recipe") &&
                 Contains(data_dir.string()) && Contains("\"tokens\":99"));

  auto prov = nlohmann::json::parse(io::file_read(out / "hearth_provenance.json"));
  CHECK(prov["run_dir"] == fs::canonical(run).string());
  CHECK(prov["recipe"]["model"] == test::stories_dir().string());
  CHECK(prov["datasets"][0]["manifest_sha256"] == sha256_file(data_dir / "manifest.json"));
  CHECK(prov["datasets"][0]["totals"]["tokens"] == 99);
  CHECK(prov["metrics"] == nlohmann::json{{"step", 2}, {"loss", 2.0}, {"eval_loss", 2.25}});
  CHECK(prov["hearth_version"].is_string());
}

TEST_CASE("export gguf-lora: llama.cpp's adapter layout", "[convert][export]") {
  const auto config = stories_config();
  for (bool rslora : {false, true}) {
    const fs::path adapter = random_adapter(rslora ? "lora-rs" : "lora", config, rslora, 8);
    const fs::path out = dir() / (rslora ? "lora-rs.gguf" : "lora.gguf");
    fs::remove(out);
    export_json("gguf-lora --model " + quote(test::stories_dir()) + " --adapter " + quote(adapter) + " --out " +
                quote(out));
    auto f = io::GgufFile::open(out);
    CHECK(f->get_string("general.type") == "adapter");
    CHECK(f->get_string("adapter.type") == "lora");
    CHECK(f->get_string("general.architecture") == "llama");
    CHECK(f->find("hearth.adapter.sha256") != nullptr);
    // llama.cpp scales by alpha / r: the file's alpha must make that PEFT's scale (alpha / √r with rslora).
    const double scale = rslora ? 8.0 / 2.0 : 8.0 / 4.0;
    CHECK(f->get_float("adapter.lora.alpha") / 4.0 == Approx(scale));
    CHECK(f->tensors().size() == 2 * 7 * static_cast<size_t>(config.num_hidden_layers));

    auto loaded = model::LoraAdapter::load(adapter, config);
    const int64_t hd = config.head_dim, heads = config.num_attention_heads;
    const auto& q = *loaded.find(1, LoraTarget::kQ);
    const auto& ta = f->tensor("blk.1.attn_q.weight.lora_a");
    const auto& tb = f->tensor("blk.1.attn_q.weight.lora_b");
    CHECK(ta.dims == std::vector<int64_t>{config.hidden_size, 4});  // ne: [in, r]
    CHECK(tb.dims == std::vector<int64_t>{4, heads * hd});          // ne: [r, out]
    const float* a = reinterpret_cast<const float*>(ta.data);
    const float* b = reinterpret_cast<const float*>(tb.data);
    CHECK(torch::equal(torch::from_blob(const_cast<float*>(a), {4, config.hidden_size}), q.A));
    // llama.cpp's permute: GGUF row 2j+i of a head holds HF row i·hd/2 + j.
    bool rows_ok = true;
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < hd / 2; ++j)
        for (int64_t i = 0; i < 2; ++i)
          for (int64_t c = 0; c < 4; ++c)
            rows_ok &= b[(h * hd + 2 * j + i) * 4 + c] == q.B[h * hd + i * hd / 2 + j][c].item<float>();
    CHECK(rows_ok);
    const auto& v = *loaded.find(1, LoraTarget::kV);  // v rows keep their order
    const float* vb = reinterpret_cast<const float*>(f->tensor("blk.1.attn_v.weight.lora_b").data);
    CHECK(torch::equal(torch::from_blob(const_cast<float*>(vb), v.B.sizes()), v.B));
  }
}

TEST_CASE("llama.cpp generates from hearth's exports what hearth generates with the adapter", "[convert][llamacpp]") {
  if (const auto missing = test::llamacpp_missing(); !missing.empty()) {
    WARN(missing << "; skipped");
    return;
  }
  const fs::path adapter = trained_adapter();
  const fs::path merged = dir() / "merged-f32.gguf", base = dir() / "base-f32.gguf", lora = dir() / "lora-f32.gguf";
  for (const auto& p : {merged, base, lora}) fs::remove(p);
  const std::string m = " --model " + quote(test::stories_dir()), a = " --adapter " + quote(adapter);
  export_json("gguf" + m + a + " --type f32 --out " + quote(merged));
  export_json("gguf" + m + " --type f32 --out " + quote(base));
  export_json("gguf-lora" + m + a + " --out " + quote(lora));

  const char* prompt = "Once upon a time";
  const auto ref = test::llamacpp_generate(
      nlohmann::json::array(
          {{{"model", merged.string()}, {"prompt", prompt}, {"max_tokens", 64}},
           {{"model", base.string()}, {"prompt", prompt}, {"max_tokens", 64}, {"lora", {lora.string()}}},
           {{"model", base.string()}, {"prompt", prompt}, {"max_tokens", 64}}}),
      dir());
  auto r = run_hearth("--json generate" + m + a + " --temperature 0 --max-tokens 64 --prompt " + quote(prompt));
  REQUIRE(r.code == 0);
  const auto h = nlohmann::json::parse(r.out);
  INFO("hearth: " << h["token_ids"].dump() << "\nllama.cpp merged: " << ref[0]["token_ids"].dump()
                  << "\nllama.cpp base + lora: " << ref[1]["token_ids"].dump());
  CHECK(ref[0]["token_ids"] == h["token_ids"]);
  CHECK(ref[1]["token_ids"] == h["token_ids"]);
  CHECK(ref[0]["text"] == h["text"]);
  CHECK(ref[2]["token_ids"] != h["token_ids"]);  // without the adapter llama.cpp says something else
}

TEST_CASE("llama.cpp renders an exported chat model's template as hearth does and stops at its end of turn",
          "[convert][llamacpp]") {
  if (const auto missing = test::llamacpp_missing(); !missing.empty()) {
    WARN(missing << "; skipped");
    return;
  }
  // stories260K as a chat model (ChatML, <|im_end|> = 513 its end of turn; see llamacpp_ref.h) with an adapter.
  const fs::path chat = test::stories_chatml(dir());
  const fs::path adapter = random_adapter("adapter-chat", model::config_load(chat), false, 14);
  const fs::path gguf = dir() / "chat-merged-f32.gguf";
  fs::remove(gguf);
  export_json("gguf --model " + quote(chat) + " --adapter " + quote(adapter) + " --type f32 --out " + quote(gguf));
  auto f = io::GgufFile::open(gguf);
  CHECK(f->get_int("tokenizer.ggml.eot_token_id") == 513);

  const nlohmann::json messages = {{{"role", "system"}, {"content", "You tell short stories."}},
                                   {{"role", "user"}, {"content", "Once upon a time"}}};
  io::atomic_write(dir() / "messages.json", messages.dump());
  auto rendered = run_hearth("--json chat-template --model " + quote(gguf) + " --messages " +
                             quote(dir() / "messages.json") + " --add-generation-prompt --tokenize");
  REQUIRE(rendered.code == 0);
  const auto hearth_prompt = nlohmann::json::parse(rendered.out);
  const auto ref = test::llamacpp_generate(
      nlohmann::json::array({{{"model", gguf.string()}, {"messages", messages}, {"add_bos", false}, {"max_tokens", 64}}}),
      dir())[0];
  CHECK(ref["chat_prompt"] == hearth_prompt["prompt"]);
  CHECK(ref["chat_wrapper_prompt"] == hearth_prompt["prompt"]);

  auto r = run_hearth("--json generate --model " + quote(chat) + " --adapter " + quote(adapter) +
                      " --chat --system " + quote("You tell short stories.") +
                      " --prompt 'Once upon a time' --temperature 0 --max-tokens 64");
  REQUIRE(r.code == 0);
  const auto h = nlohmann::json::parse(r.out);
  INFO("llama.cpp: " << ref["token_ids"].dump() << " " << ref["finish_reason"] << "\nhearth:    "
                     << h["token_ids"].dump() << " " << h["finish_reason"]);
  CHECK(ref["finish_reason"] == "stop");
  CHECK(ref["eog_token"] == 513);
  CHECK(h["finish_reason"] == "stop");
  CHECK(ref["token_ids"] == h["token_ids"]);
  CHECK(ref["text"] == h["text"]);
}

TEST_CASE("export ollama: GGUFs and the Modelfile for them", "[convert][export]") {
  // stories260K with a ChatML template (the Modelfile's TEMPLATE and stops follow from it).
  const fs::path chat = dir() / "stories-chatml";
  fs::remove_all(chat);
  fs::copy(test::stories_dir(), chat);
  auto tc = nlohmann::json::parse(io::file_read(chat / "tokenizer_config.json"));
  tc["chat_template"] = io::file_read(test::fixtures_dir() / "chat_templates" / "chatml.jinja");
  io::atomic_write(chat / "tokenizer_config.json", tc.dump());
  const fs::path adapter = random_adapter("adapter-ollama", stories_config(), false, 10);

  const fs::path out = dir() / "ollama";
  fs::remove_all(out);
  auto s = export_json("ollama --model " + quote(chat) + " --adapter " + quote(adapter) + " --out " + quote(out) +
                       " --type q8_0 --system " + quote("You tell \"short\" stories.\nBe kind."));
  CHECK(s["detail"]["template"] == "chatml");
  chat::Modelfile expected;
  expected.from = "./model.gguf";
  expected.template_text = chat::ollama_template(chat::ChatFamily::kChatML);
  expected.system = "You tell \"short\" stories.\nBe kind.";
  expected.stops = chat::ollama_stops(chat::ChatFamily::kChatML);
  CHECK(io::file_read(out / "Modelfile") == chat::modelfile_render(expected));
  auto gguf = io::GgufFile::open(out / "model.gguf");
  CHECK(gguf->get_string("tokenizer.chat_template") == tc["chat_template"].get<std::string>());
  CHECK(gguf->find("hearth.provenance") != nullptr);

  // --no-merge: the base and the adapter as two GGUFs; without --system the template's own default is SYSTEM.
  const fs::path sep = dir() / "ollama-sep";
  fs::remove_all(sep);
  export_json("ollama --model " + quote(chat) + " --adapter " + quote(adapter) + " --out " + quote(sep) +
              " --no-merge");
  expected.from = "./base.gguf";
  expected.adapter = "./adapter.gguf";
  expected.system = chat::chat_default_system(tc["chat_template"].get<std::string>());
  CHECK(io::file_read(sep / "Modelfile") == chat::modelfile_render(expected));
  CHECK(io::GgufFile::open(sep / "adapter.gguf")->get_string("general.type") == "adapter");
  CHECK(io::GgufFile::open(sep / "base.gguf")->find("hearth.adapter.sha256") == nullptr);

  // A model without a chat template: no TEMPLATE, and a warning saying so.
  const fs::path plain = dir() / "ollama-plain";
  fs::remove_all(plain);
  auto r = run_hearth("export ollama --model " + quote(test::stories_dir()) + " --out " + quote(plain));
  CHECK(r.code == 0);
  CHECK_THAT(r.err, Contains("no chat template"));
  CHECK(io::file_read(plain / "Modelfile") == "FROM ./model.gguf\n");
}

TEST_CASE("export errors: exit codes, and nothing half-written", "[convert][export]") {
  const fs::path stories = test::stories_dir();
  const fs::path adapter = random_adapter("adapter-err", stories_config(), false, 12);
  const std::string m = " --model " + quote(stories), a = " --adapter " + quote(adapter);
  const fs::path out = dir() / "err-out";
  fs::remove_all(out);

  CHECK(run_hearth("export onnx" + m + " --out " + quote(out)).code == 2);
  CHECK(run_hearth("export gguf" + m + " --dtype bf16 --out " + quote(out)).code == 2);  // --dtype is hf's
  CHECK(run_hearth("export hf" + m + " --type q8_0 --out " + quote(out)).code == 2);     // --type is gguf's
  CHECK(run_hearth("export peft" + m + " --out " + quote(out)).code == 2);               // no --adapter
  CHECK(run_hearth("export hf" + m + " --max-shard-size lots --out " + quote(out)).code == 2);
  CHECK(run_hearth("export hf --model /nonexistent --out " + quote(out)).code == 3);
  CHECK_FALSE(fs::exists(out));

  // An existing --out is kept unless --force; with --force it is replaced whole.
  fs::create_directories(out);
  io::atomic_write(out / "mine.txt", "keep me");
  auto r = run_hearth("export hf" + m + a + " --out " + quote(out));
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Contains("--force"));
  CHECK(io::file_read(out / "mine.txt") == "keep me");
  CHECK(run_hearth("export hf" + m + a + " --out " + quote(out) + " --force").code == 0);
  CHECK_FALSE(fs::exists(out / "mine.txt"));
  CHECK(fs::exists(out / "model.safetensors"));

  // An adapter for another model's shapes, and a corrupt one: format errors (4) naming the file.
  const fs::path other = random_adapter("adapter-other", test::tiny_config(), false, 13);
  const fs::path bad_out = dir() / "err-bad";
  r = run_hearth("export hf" + m + " --adapter " + quote(other) + " --out " + quote(bad_out));
  CHECK(r.code == 4);
  CHECK_THAT(r.err, Contains("adapter"));
  const fs::path corrupt = dir() / "adapter-corrupt";
  fs::remove_all(corrupt);
  fs::copy(adapter, corrupt);
  fs::resize_file(corrupt / "adapter_model.safetensors", 100);
  r = run_hearth("export gguf-lora" + m + " --adapter " + quote(corrupt) + " --out " + quote(dir() / "bad.gguf"));
  CHECK(r.code == 4);
  CHECK_THAT(r.err, Contains("adapter_model.safetensors"));
  CHECK_FALSE(fs::exists(bad_out));
  CHECK_FALSE(fs::exists(dir() / "bad.gguf"));

  // An adapter whose recorded base (hearth_base.json, as finetune-lora writes it) has another hash: refused (4)
  // unless --allow-base-mismatch; the matching hash passes.
  const fs::path recorded = dir() / "adapter-recorded";
  fs::remove_all(recorded);
  fs::copy(adapter, recorded);
  const std::string stories_sha = sha256_hex(io::file_read(stories / "config.json") +
                                             io::file_read(stories / "model.safetensors"));
  io::atomic_write(recorded / "hearth_base.json",
                   nlohmann::json{{"path", "/elsewhere/base"}, {"kind", "hf"}, {"sha256", std::string(64, '0')}}.dump());
  const fs::path mismatch = dir() / "err-mismatch.gguf";
  r = run_hearth("export gguf-lora" + m + " --adapter " + quote(recorded) + " --out " + quote(mismatch));
  CHECK(r.code == 4);
  CHECK_THAT(r.err, Contains("/elsewhere/base") && Contains(stories_sha) && Contains("--allow-base-mismatch"));
  CHECK_FALSE(fs::exists(mismatch));
  CHECK(run_hearth("export gguf-lora" + m + " --adapter " + quote(recorded) + " --out " + quote(mismatch) +
                   " --allow-base-mismatch")
            .code == 0);
  fs::remove(mismatch);
  io::atomic_write(recorded / "hearth_base.json",
                   nlohmann::json{{"path", stories.string()}, {"kind", "hf"}, {"sha256", stories_sha}}.dump());
  CHECK(run_hearth("export gguf-lora" + m + " --adapter " + quote(recorded) + " --out " + quote(mismatch)).code == 0);
  CHECK(run_hearth("export gguf" + m + " --allow-base-mismatch --out " + quote(dir() / "x.gguf")).code == 2);

  // A write that fails midway (the file-size limit, as a full disk would): exit 5, no output, no temporaries.
  const fs::path full = dir() / "err-full";
  r = run_hearth("export hf" + m + a + " --out " + quote(full), "ulimit -f 256;");
  CHECK(r.code == 5);
  CHECK_FALSE(fs::exists(full));
  CHECK(entries_with_prefix(dir(), "err-full").empty());
  r = run_hearth("export gguf" + m + a + " --type f32 --out " + quote(dir() / "err-full.gguf"), "ulimit -f 256;");
  CHECK(r.code == 5);
  CHECK(entries_with_prefix(dir(), "err-full").empty());
}
