// From a file's bytes to records: format detection (by extension, or forced with --format) and dispatch
// to the readers of each format (plain text and Markdown here; html_text.h, pdf_text.h, mail.h,
// records.h). Not here: cleaning, redaction, tokenization.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "data/mail.h"
#include "data/record.h"

namespace hearth::data {

enum class Format { kTxt, kMd, kHtml, kPdf, kEml, kMbox, kJsonl, kJson };

const char* format_name(Format f);
// Parses a --format value (txt|md|html|pdf|eml|mbox|jsonl|json). Throws ConfigError naming `option`.
Format format_parse(const std::string& name, const std::string& option);
// The format a file's extension says (case-insensitive: .txt .text .md .markdown .html .htm .pdf .eml .mbox
// .jsonl .ndjson .json), or nullopt.
std::optional<Format> format_detect(const std::filesystem::path& path);

struct ExtractOptions {
  MailOptions mail;
};

// Records of a file in format `f`. Problems (invalid UTF-8, a malformed JSON line, an encrypted PDF, an
// empty file) become issues with line numbers; a problem with the whole file sets skip_reason. Never
// throws for bad content.
Extracted extract(std::string_view bytes, Format f, const ExtractOptions& options);

// Markdown without its front matter (a leading "---" YAML or "+++" TOML block).
std::string_view markdown_body(std::string_view text);

}  // namespace hearth::data
