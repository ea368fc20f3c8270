// Fuzz target: the finetune-lora recipe (recipe/lora_recipe.h) — YAML text and command-line overrides -> a
// validated LoraRecipe.
//
// Input: the recipe YAML, optionally followed by a NUL byte and override lines ("key.path=value", one per line,
// as --set gives them). Every problem must be a ConfigError naming the file and line; when the recipe is
// accepted, its resolved JSON (to_json, training_identity) is built as the run directory saves it. The base
// directory for relative paths does not exist: recipe_parse does not touch the filesystem.
// Seeds: recipes/**/*.yaml, fuzz/seeds/recipe (with overrides).
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "recipe/lora_recipe.h"

using namespace hearth;
using namespace hearth::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_expect_errors("recipe", [&] {
    const std::string_view input = fuzz_bytes(data, size);
    const size_t nul = input.find('\0');
    std::vector<std::string> overrides;
    if (nul != std::string_view::npos) {
      std::string_view rest = input.substr(nul + 1);
      while (!rest.empty()) {
        const size_t eol = rest.find('\n');
        overrides.emplace_back(rest.substr(0, eol));
        rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
      }
    }
    const auto recipe = recipe::recipe_parse(std::string(input.substr(0, nul)), "fuzz.yaml",
                                             "/nonexistent/fuzz-recipe-dir", overrides);
    (void)recipe.to_json().dump();
    (void)recipe.training_identity().dump();
  });
  return 0;
}
