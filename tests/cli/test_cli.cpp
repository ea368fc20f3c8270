// End to end: the hearth binary run as a user would, checking exit codes (docs/cli.md) and outputs
// against the stories260K reference (models/stories260K/expected.json).
#include <catch2/catch.hpp>

#include <map>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli_util.h"
#include "io/atomic_file.h"
#include "io/json_file.h"
#include "test_paths.h"

using namespace hearth;
using test::run_hearth;
using test::scratch;
namespace fs = std::filesystem;

namespace {

std::string model_arg() { return "--model '" + test::stories_dir().string() + "'"; }

nlohmann::json expected() { return io::json_read(test::stories_dir() / "expected.json"); }

// A copy of the bundled model whose files the test can break.
fs::path model_copy(const std::string& name) {
  auto dir = scratch() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(test::stories_dir())) fs::copy_file(e.path(), dir / e.path().filename());
  return dir;
}

}  // namespace

TEST_CASE("hearth --version and --help exit 0, usage errors exit 2", "[cli]") {
  auto v = run_hearth("--version");
  CHECK(v.code == 0);
  CHECK(v.out.find("hearth 0.") != std::string::npos);
  auto help = run_hearth("--help");
  CHECK(help.code == 0);
  CHECK(help.out.find("Usage: hearth [OPTIONS] SUBCOMMAND") != std::string::npos);  // not the binary's path
  auto bare = run_hearth("");
  CHECK(bare.code == 2);
  CHECK(bare.err.find("finetune-lora") != std::string::npos);  // lists the commands
  CHECK(bare.err.find("serve") != std::string::npos);
  auto help_serve = run_hearth("help serve");
  CHECK(help_serve.code == 0);
  CHECK(help_serve.out.find("Usage: hearth serve [OPTIONS]") != std::string::npos);
  CHECK(help_serve.out.find("--max-connections") != std::string::npos);
  CHECK(run_hearth("help").code == 0);
  CHECK(run_hearth("help no-such-command").code == 2);
  CHECK(run_hearth("no-such-command").code == 2);
  CHECK(run_hearth("generate --prompt hi").code == 2);  // --model missing
  auto bad = run_hearth("generate " + model_arg() + " --prompt hi --temperature -1");
  CHECK(bad.code == 2);
  CHECK(bad.err.find("temperature") != std::string::npos);
  CHECK(run_hearth("--log-level loud inspect " + model_arg()).code == 2);
}

// The kernels OpenBLAS reports (OPENBLAS_VERBOSE=2 prints "Core: NAME" when it loads): the last line is the
// process hearth ran in after executing itself again.
std::string openblas_core(const std::string& env) {
  const auto err = run_hearth("--version", "OPENBLAS_VERBOSE=2 " + env).err;
  const auto at = err.rfind("Core: ");
  if (at == std::string::npos) return "";
  return err.substr(at + 6, err.find('\n', at) - at - 6);
}

TEST_CASE("hearth runs OpenBLAS's kernels for the CPU's instructions, not the generic ones of a CPU it does not know",
          "[cli]") {
  const auto core = openblas_core("");
  if (core.empty()) {
    SUCCEED("the BLAS is not OpenBLAS");
    return;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) CHECK(core != "Prescott");
  CHECK(openblas_core("OPENBLAS_CORETYPE=Prescott") == "Prescott");  // the user's choice stands
}

TEST_CASE("short flags as llama.cpp users type them: -m -p -n -s --temp -t", "[cli]") {
  auto longer = run_hearth("--threads 1 --json generate " + model_arg() +
                           " --prompt 'Once upon a time' --max-tokens 8 --temperature 0 --seed 5");
  auto shorter = run_hearth("-t 1 --json generate -m " + test::stories_dir().string() +
                            " -p 'Once upon a time' -n 8 --temp 0 -s 5");
  REQUIRE(longer.code == 0);
  REQUIRE(shorter.code == 0);
  CHECK(nlohmann::json::parse(shorter.out)["token_ids"] == nlohmann::json::parse(longer.out)["token_ids"]);
  CHECK(nlohmann::json::parse(shorter.out)["token_ids"].size() == 8);
  CHECK(nlohmann::json::parse(shorter.out)["completion_tokens"] == 8);
}

TEST_CASE("hearth generate --json: greedy continuation equals the reference ids", "[cli]") {
  auto want = expected()["greedy_from_bos_64_ids"].get<std::vector<int>>();
  auto r = run_hearth("--json generate " + model_arg() +
                      " --prompt 'Once upon a time' --temperature 0 --max-tokens 20");
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["prompt_tokens"] == 5);  // <s> Once upon a time
  CHECK(j["completion_tokens"] == 20);
  CHECK(j["finish_reason"] == "length");
  CHECK(j["token_ids"].get<std::vector<int>>() == std::vector<int>(want.begin() + 5, want.begin() + 25));
  CHECK(j["text"].get<std::string>().rfind(", there was a little girl named Lily.", 0) == 0);
  for (const char* k : {"prefill_tokens_per_s", "decode_tokens_per_s"}) CHECK(j[k].get<double>() > 0);

  // Streaming mode prints the same text on stdout, then a newline; logs stay on stderr.
  auto s = run_hearth("generate " + model_arg() + " --prompt 'Once upon a time' --temperature 0 --max-tokens 20");
  REQUIRE(s.code == 0);
  CHECK(s.out == j["text"].get<std::string>() + "\n");
  // --stop cuts the text before the stop string
  auto st = run_hearth("--json generate " + model_arg() + " --prompt 'Once upon a time' --temperature 0 --stop Lily");
  auto sj = nlohmann::json::parse(st.out);
  CHECK(sj["finish_reason"] == "stop");
  CHECK(sj["text"] == ", there was a little girl named ");
}

TEST_CASE("hearth eval matches the reference prompt NLL", "[cli]") {
  auto text = scratch() / "prompt.txt";
  io::atomic_write(text, expected()["prompt_text"].get<std::string>());
  auto r = run_hearth("--json eval " + model_arg() + " --text-file '" + text.string() + "'");
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["mean_nll"].get<double>() == Approx(expected()["prompt_mean_nll"].get<double>()).margin(1e-5));
  CHECK(j["tokens_scored"] == 15);
  CHECK(run_hearth("eval " + model_arg() + " --text-file /nonexistent.txt").code == 3);
  const std::string readme = " --text-file " + (test::source_dir() / "README.md").string();
  for (const char* bad : {" --stride 0", " --stride -5", " --ctx 0", " --ctx -1"}) {  // not "the default"
    auto r = run_hearth("eval " + model_arg() + readme + bad);
    INFO(bad);
    CHECK(r.code == 2);
  }
  auto folder = run_hearth("eval " + model_arg() + " --text-file " + test::source_dir().string());  // a folder: I/O (3)
  CHECK(folder.code == 3);
  CHECK(folder.err.find("is a folder") != std::string::npos);
}

TEST_CASE("hearth eval --reference: KL divergence and top-1 agreement of quantized files against float32", "[cli]") {
  // Loose quality bounds for `hearth quantize` on stories260K (measured: q8_0 KL 0.0006 nats, top-1 97.8%; q4_k_m
  // 0.014, 93.2%; q4_0 0.064, 88.1% — docs/quantize.md), and the identities of the comparison itself.
  const auto text = test::source_dir() / "bench" / "data" / "story.txt";
  auto eval = [&](const std::string& model) {
    auto r = run_hearth("--json eval --model '" + model + "' --ctx 256 --text-file '" + text.string() +
                        "' --reference '" + test::stories_dir().string() + "'");
    REQUIRE(r.code == 0);
    return nlohmann::json::parse(r.out);
  };
  auto self = eval(test::stories_dir().string());
  CHECK(self["mean_kl"].get<double>() == Approx(0).margin(1e-12));
  CHECK(self["top1_agreement"] == 1.0);
  CHECK(self["perplexity"] == self["reference_perplexity"]);
  std::map<std::string, nlohmann::json> q;
  for (const char* type : {"q8_0", "q4_k_m", "q4_0"}) {
    const auto gguf = scratch() / (std::string(type) + ".gguf");
    REQUIRE(run_hearth("quantize " + model_arg() + " --type " + type + " --out '" + gguf.string() + "'").code == 0);
    q[type] = eval(gguf.string());
    CHECK(q[type]["reference_perplexity"] == self["perplexity"]);  // the same windows of the same reference
  }
  CHECK(q["q8_0"]["mean_kl"].get<double>() < 0.005);
  CHECK(q["q8_0"]["top1_agreement"].get<double>() > 0.93);
  CHECK(q["q4_0"]["mean_kl"].get<double>() < 0.25);
  CHECK(q["q4_0"]["top1_agreement"].get<double>() > 0.75);
  // More bits, closer to float32.
  CHECK(q["q8_0"]["mean_kl"].get<double>() < q["q4_k_m"]["mean_kl"].get<double>());
  CHECK(q["q4_k_m"]["mean_kl"].get<double>() < q["q4_0"]["mean_kl"].get<double>());
}

TEST_CASE("hearth tokenize / detokenize round-trip the reference ids", "[cli]") {
  auto e = expected();
  auto r = run_hearth("--json tokenize " + model_arg() + " --text '" + e["prompt_text"].get<std::string>() + "'");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out) == e["prompt_ids_with_bos"]);
  auto d = run_hearth("detokenize " + model_arg() + " --skip-special --ids '" +
                      nlohmann::json(e["prompt_ids_with_bos"]).dump() + "'");
  REQUIRE(d.code == 0);
  CHECK(d.out == e["prompt_text"].get<std::string>() + "\n");
  CHECK(run_hearth("detokenize " + model_arg() + " --ids '1 99999'").code == 2);
  CHECK(run_hearth("detokenize " + model_arg() + " --ids 'one two'").code == 2);
}

TEST_CASE("hearth inspect reports the architecture", "[cli]") {
  auto r = run_hearth("--json inspect " + model_arg());
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["parameters"] == 260032);
  CHECK(j["model_type"] == "llama");
  CHECK(j["num_key_value_heads"] == 4);
  CHECK(j["dtypes"]["F32"] == 260032);
}

TEST_CASE("broken models exit 3 (missing) or 4 (malformed) with the file named", "[cli]") {
  CHECK(run_hearth("generate --model /nonexistent/model --prompt hi").code == 3);

  auto truncated = model_copy("truncated");
  fs::resize_file(truncated / "model.safetensors", 5000);
  auto t = run_hearth("--json generate --model '" + truncated.string() + "' --prompt hi");
  CHECK(t.code == 4);
  CHECK(t.err.find("model.safetensors") != std::string::npos);
  CHECK(nlohmann::json::parse(t.out)["error"]["exit_code"] == 4);

  auto unsupported = model_copy("unsupported");
  auto cfg = io::json_read(unsupported / "config.json");
  cfg["model_type"] = "gpt_neox";
  io::atomic_write(unsupported / "config.json", cfg.dump());
  auto u = run_hearth("generate --model '" + unsupported.string() + "' --prompt hi");
  CHECK(u.code == 4);
  CHECK(u.err.find("gpt_neox") != std::string::npos);
  CHECK(u.err.find("qwen3") != std::string::npos);

  auto shape = model_copy("shape");
  cfg = io::json_read(shape / "config.json");
  cfg["hidden_size"] = 96;
  io::atomic_write(shape / "config.json", cfg.dump());
  auto s = run_hearth("generate --model '" + shape.string() + "' --prompt hi");
  CHECK(s.code == 4);
  CHECK(s.err.find("model.embed_tokens.weight") != std::string::npos);

  auto no_tok = model_copy("notok");
  fs::remove(no_tok / "tokenizer.json");
  CHECK(run_hearth("generate --model '" + no_tok.string() + "' --prompt hi").code == 3);
}

TEST_CASE("a JSON number beyond double's range (1e400) is a malformed file (exit 4) in every JSON input", "[cli]") {
  // nlohmann reports it as out_of_range, not parse_error; the readers caught only the latter (exit 1).
  auto config = model_copy("config1e400");
  auto cfg = io::file_read(config / "config.json");
  cfg.replace(cfg.find('{'), 1, R"({"rope_scaling_factor_unused": 1e400, )");
  io::atomic_write(config / "config.json", cfg);
  auto c = run_hearth("generate --model '" + config.string() + "' --prompt hi --max-tokens 1");
  CHECK(c.code == 4);
  CHECK(c.err.find("config.json") != std::string::npos);

  auto tok = model_copy("tokenizer1e400");
  auto tj = io::file_read(tok / "tokenizer.json");
  tj.replace(tj.find('{'), 1, R"({"unused": 1e400, )");
  io::atomic_write(tok / "tokenizer.json", tj);
  auto t = run_hearth("tokenize --model '" + tok.string() + "' --text hi");
  CHECK(t.code == 4);
  CHECK(t.err.find("tokenizer.json") != std::string::npos);

  const fs::path messages = scratch() / "messages1e400.json";
  io::atomic_write(messages, R"([{"role": "user", "content": "hi", "weight": 1e400}])");
  auto m = run_hearth("chat-template " + model_arg() + " --messages '" + messages.string() + "'");
  CHECK(m.code == 4);
  CHECK(m.err.find("--messages") != std::string::npos);
}

TEST_CASE("device cuda without CUDA exits 5", "[cli]") {
  auto r = run_hearth("--device cuda generate " + model_arg() + " --prompt hi --max-tokens 2");
  if (r.code == 0) SUCCEED("this build has a CUDA device");
  else {
    CHECK(r.code == 5);
    CHECK(r.err.find("CUDA") != std::string::npos);
  }
}

TEST_CASE("float16 on the CPU is refused at startup with exit 2, for every command that loads a model", "[cli]") {
  // libtorch's CPU kernels lack float16 matmuls: the forward would fail later, request by request.
  for (const std::string& cmd : std::vector<std::string>{
           "generate " + model_arg() + " --prompt hi --max-tokens 2 --dtype float16",
           "eval " + model_arg() + " --text-file " + (test::source_dir() / "README.md").string() + " --dtype float16",
           "serve " + model_arg() + " --port 0 --dtype float16"}) {
    INFO(cmd);
    auto r = run_hearth(cmd);
    CHECK(r.code == 2);
    CHECK(r.err.find("float16") != std::string::npos);
    CHECK(r.err.find("bfloat16") != std::string::npos);  // says what works instead
  }
}

TEST_CASE("a tokenizer with ids beyond the model's vocabulary is refused at load, naming the token", "[cli]") {
  // stories260K (vocab_size 512) with an added token at id 600: it used to load, and the first use of the token
  // failed with an index error (in serve, a 500 that also failed the requests batched with it).
  const fs::path dir = scratch() / "vocab_beyond";
  fs::remove_all(dir);
  fs::copy(test::stories_dir(), dir);
  auto tok = nlohmann::json::parse(io::file_read(dir / "tokenizer.json"));
  tok["added_tokens"].push_back({{"id", 600},
                                 {"content", "<|extra|>"},
                                 {"single_word", false},
                                 {"lstrip", false},
                                 {"rstrip", false},
                                 {"normalized", false},
                                 {"special", true}});
  io::atomic_write(dir / "tokenizer.json", tok.dump());
  const std::string model = " --model '" + dir.string() + "'";
  for (const std::string cmd : {"generate" + model + " --prompt 'Once' --max-tokens 2",
                                "eval" + model + " --text-file '" + (test::source_dir() / "README.md").string() + "'",
                                "serve" + model + " --port 0"}) {
    auto r = run_hearth(cmd);
    INFO(cmd << "\n" << r.err);
    CHECK(r.code == 4);
    CHECK(r.err.find("<|extra|>") != std::string::npos);
    CHECK(r.err.find("vocab_size is 512") != std::string::npos);
  }
}

TEST_CASE("inspect --verify reads every weight and names the ones holding NaN or Inf", "[cli]") {
  auto ok = run_hearth("--json inspect --verify " + model_arg());
  REQUIRE(ok.code == 0);
  CHECK(nlohmann::json::parse(ok.out)["verify"]["ok"] == true);
  // A copy of stories260K with two NaNs and an Inf written into one tensor's float32 data.
  const fs::path dir = scratch() / "nan_model";
  fs::remove_all(dir);
  fs::copy(test::stories_dir(), dir);
  std::string bytes = io::file_read(dir / "model.safetensors");
  uint64_t header = 0;
  for (int i = 0; i < 8; ++i) header |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  const auto meta = nlohmann::json::parse(bytes.substr(8, header));
  const std::string name = "model.layers.2.mlp.down_proj.weight";
  REQUIRE(meta[name]["dtype"] == "F32");
  const size_t begin = 8 + header + meta[name]["data_offsets"][0].get<size_t>();
  const float bad[3] = {std::nanf(""), std::nanf(""), INFINITY};
  for (int k = 0; k < 3; ++k) std::memcpy(&bytes[begin + 40 * k], &bad[k], 4);
  io::atomic_write(dir / "model.safetensors", bytes);
  auto r = run_hearth("--json inspect --verify --model '" + dir.string() + "'");
  CHECK(r.code == 4);
  const auto j = nlohmann::json::parse(r.out);  // one object: the error
  CHECK(j["error"]["exit_code"] == 4);
  CHECK_THAT(j["error"]["message"].get<std::string>(),
             Catch::Contains("1 weight tensor(s)") && Catch::Contains("'" + name + "' (3 of"));
  // The same weights as a GGUF (written before the damage would be refused by quantize): f32 of the clean model
  // verifies clean through the GGUF decoder.
  const fs::path gguf = scratch() / "clean.gguf";
  REQUIRE(run_hearth("quantize " + model_arg() + " --type q8_0 --out '" + gguf.string() + "'").code == 0);
  CHECK(run_hearth("inspect --verify --model '" + gguf.string() + "'").code == 0);
}

TEST_CASE("an unknown option names the nearest one it may have meant", "[cli]") {
  auto typo = run_hearth("generate " + model_arg() + " -p hi --tmep 0");
  CHECK(typo.code == 2);
  CHECK_THAT(typo.err, Catch::Contains("hearth generate: unknown option '--tmep'; did you mean '--temp'?"));
  auto far = run_hearth("generate " + model_arg() + " -p hi --zzzzzzzz");
  CHECK(far.code == 2);
  CHECK_THAT(far.err, Catch::Contains("unknown option '--zzzzzzzz'"));
  CHECK_THAT(far.err, !Catch::Contains("did you mean"));
  auto global = run_hearth("--thread 2 inspect " + model_arg());  // a global option misspelt
  CHECK(global.code == 2);
  CHECK_THAT(global.err, Catch::Contains("did you mean '--threads'?"));
}

TEST_CASE("generate -c/--ctx-size bounds prompt and reply", "[cli]") {
  auto r = run_hearth("--json generate " + model_arg() + " -p 'Once upon a time' -c 12 -n 100 --temp 0");
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["prompt_tokens"].get<int>() + j["completion_tokens"].get<int>() == 12);
  CHECK(j["finish_reason"] == "length");
  auto full = nlohmann::json::parse(
      run_hearth("--json generate " + model_arg() + " -p 'Once upon a time' -n 100 --temp 0").out);
  CHECK(full["text"].get<std::string>().rfind(j["text"].get<std::string>(), 0) == 0);  // the same reply, cut
  auto small = run_hearth("generate " + model_arg() + " -p 'Once upon a time' -c 3");
  CHECK(small.code == 2);
  CHECK_THAT(small.err, Catch::Contains("--ctx-size"));
}

TEST_CASE("quiet: -q leaves stderr to errors and stdout to results", "[cli]") {
  auto r = run_hearth("-q generate " + model_arg() + " -p 'Once upon a time' -n 8 --temp 0");
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK_FALSE(r.out.empty());
  auto loud = run_hearth("generate " + model_arg() + " -p 'Once upon a time' -n 8 --temp 0");
  CHECK_THAT(loud.err, Catch::Contains("prompt tokens"));  // the summary line -q removed
  CHECK(run_hearth("-q --log-level info inspect " + model_arg()).code == 2);
  auto err = run_hearth("-q generate --model /nonexistent -p hi");
  CHECK(err.code == 3);
  CHECK_FALSE(err.err.empty());  // errors still go to stderr
}
