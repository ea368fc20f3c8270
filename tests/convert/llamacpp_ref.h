// llama.cpp as an independent reference in tests: node-llama-cpp 3.21.1's prebuilt CPU build, driven by
// scripts/llamacpp_ref/generate.mjs (installed by fetch_test_assets on Linux x86-64).
#pragma once

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "io/atomic_file.h"

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

}  // namespace hearth::test
