// Reading JSON files with errors that name the file, line and field.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace hearth::io {

// Parses a JSON file. Missing/unreadable → IoError; malformed → FormatError with the byte position.
nlohmann::json json_read(const std::filesystem::path& path);
// Parses JSON text; `origin` names its source in the FormatError message (syntax errors and numbers beyond
// double's range, such as 1e400, alike).
nlohmann::json json_parse(const std::string& text, const std::string& origin);

}  // namespace hearth::io
