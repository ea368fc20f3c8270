#include "io/json_file.h"

#include <fmt/format.h>

#include "core/error.h"
#include "io/atomic_file.h"

namespace hearth::io {

nlohmann::json json_parse(const std::string& text, const std::string& origin) {
  try {
    return json_parse_bounded(text);
  } catch (const JsonTooDeep& e) {
    throw FormatError(fmt::format("{}: invalid JSON; {}", origin, e.what()));
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(fmt::format("{}: invalid JSON at byte {}; {}", origin, e.byte, e.what()));
  } catch (const nlohmann::json::exception& e) {  // a number out of range, such as 1e400 (out_of_range.406)
    throw FormatError(fmt::format("{}: invalid JSON; {}", origin, e.what()));
  }
}

nlohmann::json json_read(const std::filesystem::path& path) { return json_parse(file_read(path), path.string()); }

}  // namespace hearth::io
