// Text cleanup before anything else sees the text: Unicode NFC (UAX #15, the tokenizer's tables), line
// endings to "\n", control and zero-width characters removed, no-break and other Unicode spaces to ' ',
// trailing spaces on lines removed, runs of blank lines collapsed to one, leading/trailing blank space
// trimmed. Not here: redaction (redact.h), duplicate detection (dedup.h).
#pragma once

#include <string>
#include <string_view>

#include "core/sha256.h"

namespace hearth::data {

// Cleaned copy of `text` (valid UTF-8).
std::string text_clean(std::string_view text);

// The identity of a text for exact de-duplication: SHA-256 of the text with every run of whitespace
// collapsed to one space and leading/trailing whitespace removed (so re-wrapped copies count as the same).
Digest text_key(std::string_view cleaned);

}  // namespace hearth::data
