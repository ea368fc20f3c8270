// config.json parsing: HF keys, family switches, defaults and the errors users see.
#include <catch2/catch.hpp>

#include "core/error.h"
#include "model/config.h"
#include "test_paths.h"

using namespace hearth;
using Catch::Matchers::Contains;

TEST_CASE("stories260K config.json parses with HF keys", "[model]") {
  auto c = model::config_load(test::stories_dir());
  CHECK(c.model_type == "llama");
  CHECK(c.hidden_size == 64);
  CHECK(c.num_hidden_layers == 5);
  CHECK(c.num_attention_heads == 8);
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.tie_word_embeddings);
  CHECK(c.eos_token_id == std::vector<int64_t>{2});
  // 260,032 parameters per the fixture's README (tied embeddings counted once)
  CHECK(c.parameter_count() == 260032);
}

TEST_CASE("family switches come from model_type", "[model]") {
  nlohmann::json j = {{"model_type", "qwen2"},  {"vocab_size", 10},       {"hidden_size", 8},
                      {"intermediate_size", 8}, {"num_hidden_layers", 1}, {"num_attention_heads", 2}};
  auto q2 = model::config_parse(j, "c");
  CHECK(q2.qkv_bias);
  CHECK_FALSE(q2.o_bias);
  CHECK(q2.num_key_value_heads == 2);
  j["model_type"] = "qwen3";
  auto q3 = model::config_parse(j, "c");
  CHECK(q3.qk_norm);
  CHECK_FALSE(q3.qkv_bias);
  j["model_type"] = "mistral";
  j["sliding_window"] = 4096;
  CHECK(model::config_parse(j, "c").sliding_window == 4096);
  j["model_type"] = "qwen2";  // Qwen2 applies its window only with use_sliding_window
  CHECK_FALSE(model::config_parse(j, "c").sliding_window.has_value());
  j["eos_token_id"] = nlohmann::json::array({5, 7});
  CHECK(model::config_parse(j, "c").eos_token_id == std::vector<int64_t>{5, 7});
}

TEST_CASE("config errors name the file and key", "[model]") {
  nlohmann::json j = {{"model_type", "gpt2"}};
  CHECK_THROWS_WITH(model::config_parse(j, "cfg.json"),
                    Contains("cfg.json") && Contains("gpt2") && Contains("llama, mistral, qwen2, qwen3"));
  j = {{"model_type", "llama"},
       {"vocab_size", 10},
       {"hidden_size", 8},
       {"num_hidden_layers", 1},
       {"num_attention_heads", 2}};
  CHECK_THROWS_WITH(model::config_parse(j, "cfg.json"), Contains("intermediate_size"));
  j["intermediate_size"] = "big";
  CHECK_THROWS_AS(model::config_parse(j, "cfg.json"), FormatError);
  CHECK_THROWS_WITH(model::config_parse(j, "cfg.json"), Contains("intermediate_size") && Contains("integer"));
  j["intermediate_size"] = 8;
  j["num_key_value_heads"] = 3;
  CHECK_THROWS_WITH(model::config_parse(j, "cfg.json"), Contains("multiple"));
  j["num_key_value_heads"] = 2;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  CHECK_THROWS_WITH(model::config_parse(j, "cfg.json"), Contains("yarn") && Contains("llama3"));
  j.erase("rope_scaling");
  REQUIRE_NOTHROW(model::config_parse(j, "cfg.json"));

  // Values that used to load and give garbage with exit 0 (#16 item 17).
  auto refused = [&](const char* key, nlohmann::json value) {
    nlohmann::json bad = j;
    bad[key] = value;
    INFO(key << " = " << value.dump());
    CHECK_THROWS_AS(model::config_parse(bad, "cfg.json"), FormatError);
    CHECK_THROWS_WITH(model::config_parse(bad, "cfg.json"), Contains("cfg.json") && Contains(key));
  };
  refused("rope_theta", 0);
  refused("rope_theta", -10000.0);
  refused("rms_norm_eps", -1e-6);
  refused("bos_token_id", 10);  // vocab_size 10: ids 0..9
  refused("bos_token_id", -1);
  refused("eos_token_id", 12);
  refused("eos_token_id", nlohmann::json::array({2, 10}));
  nlohmann::json edge = j;
  edge["rms_norm_eps"] = 0;
  edge["bos_token_id"] = 9;
  edge["eos_token_id"] = 0;
  CHECK_NOTHROW(model::config_parse(edge, "cfg.json"));
}
