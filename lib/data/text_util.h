// Small text helpers shared by the extractors: UTF-8 checks with line numbers, Latin-1 conversion,
// line splitting, trimming. Not here: Unicode normalization and whitespace cleanup (clean.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::data {

// Byte offset of the first invalid UTF-8 sequence in s, or nullopt when s is valid.
std::optional<size_t> utf8_first_invalid(std::string_view s);
// 1-based line number of byte `offset` in s.
uint64_t line_of(std::string_view s, size_t offset);
// "invalid UTF-8 at line L (byte 0xNN)" for s, or "" when s is valid. `first_line` is s's first line number.
std::string utf8_problem(std::string_view s, uint64_t first_line = 1, uint64_t* line_out = nullptr);
// ISO-8859-1 / windows-1252 bytes to UTF-8 (the 0x80-0x9F range as windows-1252).
std::string latin1_to_utf8(std::string_view s);
// Lines of s without their '\n' (and a trailing '\r' removed).
std::vector<std::string_view> lines_split(std::string_view s);
std::string_view trim(std::string_view s);
std::string lower(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
bool iequals(std::string_view a, std::string_view b);
// "YYYY-MM-DDTHH:MM:SSZ" for seconds since the epoch (UTC).
std::string iso_utc(int64_t seconds);
// True when the first 8000 bytes hold a NUL byte (how git and grep tell binary files).
bool looks_binary(std::string_view s);

}  // namespace hearth::data
