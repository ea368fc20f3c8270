#include "io/json_file.h"

#include <fmt/format.h>

#include "core/error.h"
#include "io/atomic_file.h"

namespace hearth::io {

nlohmann::json json_parse(const std::string& text, const std::string& origin) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(fmt::format("{}: invalid JSON at byte {}; {}", origin, e.byte, e.what()));
  }
}

nlohmann::json json_read(const std::filesystem::path& path) { return json_parse(file_read(path), path.string()); }

}  // namespace hearth::io
