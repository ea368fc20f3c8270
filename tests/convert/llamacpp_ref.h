// llama.cpp as an independent reference in tests: node-llama-cpp 3.21.1's prebuilt CPU build, driven by
// scripts/llamacpp_ref/generate.mjs (installed by fetch_test_assets on Linux x86-64).
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "cli_util.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"

namespace hearth::test {

// Why llama.cpp cannot be run here ("" when it can).
inline std::string llamacpp_missing() {
  const std::filesystem::path package = assets_dir() / "llamacpp-ref" / "node_modules" / "node-llama-cpp";
  if (!std::filesystem::exists(package))
    return "llama.cpp reference not installed (fetch_test_assets installs it on Linux x86-64 only)";
  if (std::system("command -v node >/dev/null 2>&1") != 0) return "node not found";
  return "";
}

// scripts/llamacpp_ref/generate.mjs on a list of runs (see its header for the fields): one result object per run.
// `dir` holds the request and output files.
inline nlohmann::json llamacpp_generate(const nlohmann::json& runs, const std::filesystem::path& dir) {
  const std::filesystem::path request = dir / "request.json", out = dir / "llamacpp.json", err = dir / "llamacpp.err";
  io::atomic_write(request, runs.dump());
  const std::string command = "node " + quote(source_dir() / "scripts" / "llamacpp_ref" / "generate.mjs") + " " +
                              quote(assets_dir()) + " " + quote(request) + " >" + quote(out) + " 2>" + quote(err);
  const int status = std::system(command.c_str());
  INFO("generate.mjs stderr: " << io::file_read(err));
  REQUIRE(status == 0);
  auto j = nlohmann::json::parse(io::file_read(out));
  REQUIRE(j.size() == runs.size());
  return j;
}

// In `parent`, a copy of stories260K that is a chat model: <|im_start|> (512) and <|im_end|> (513) added as special tokens, a
// ChatML template, <|im_end|> the end of turn (generation_config.json lists it, as chat models' do). The model
// never learned them, so their embedding rows are made from existing ones: <|im_start|> = <s>'s row, and
// <|im_end|> = 1.01 × "."'s row. The head is tied, so <|im_end|>'s logit is 1.01 × "."'s: wherever "." would be
// the arg-max with a positive logit, <|im_end|> is — the model ends its turn at its first full stop.
inline std::filesystem::path stories_chatml(const std::filesystem::path& parent) {
  namespace fs = std::filesystem;
  const fs::path src = stories_dir(), out = parent / "stories260K-chatml";
  fs::create_directories(out);
  auto tokenizer = nlohmann::json::parse(io::file_read(src / "tokenizer.json"));
  const int64_t vocab = 512;
  REQUIRE(tokenizer["model"]["vocab"].contains("."));
  const int64_t full_stop = tokenizer["model"]["vocab"]["."];
  for (auto [id, text] : {std::pair<int64_t, const char*>{vocab, "<|im_start|>"}, {vocab + 1, "<|im_end|>"}})
    tokenizer["added_tokens"].push_back({{"id", id},
                                         {"content", text},
                                         {"single_word", false},
                                         {"lstrip", false},
                                         {"rstrip", false},
                                         {"normalized", false},
                                         {"special", true}});
  io::atomic_write(out / "tokenizer.json", tokenizer.dump());
  auto tokenizer_config = nlohmann::json::parse(io::file_read(src / "tokenizer_config.json"));
  tokenizer_config["chat_template"] =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
      "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  io::atomic_write(out / "tokenizer_config.json", tokenizer_config.dump(2));
  auto config = nlohmann::json::parse(io::file_read(src / "config.json"));
  config["vocab_size"] = vocab + 2;
  io::atomic_write(out / "config.json", config.dump(2));
  io::atomic_write(out / "generation_config.json",
                   nlohmann::json{{"bos_token_id", 1}, {"eos_token_id", {2, vocab + 1}}}.dump(2));
  auto tensors = model::checkpoint_tensors(src);
  auto& embed = tensors.at("model.embed_tokens.weight");  // [V, C] -> [V + 2, C]
  REQUIRE(embed.size(0) == vocab);
  embed = torch::cat({embed, embed[1].unsqueeze(0), (embed[full_stop] * 1.01f).unsqueeze(0)}, 0);
  model::safetensors_save(out / "model.safetensors", tensors, {{"format", "pt"}});
  return out;
}

}  // namespace hearth::test
