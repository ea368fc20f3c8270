// From a file's bytes to records: format detection (by extension, then by content: a .json that is a ChatGPT,
// Claude or Telegram export, a .txt that is a WhatsApp chat; or forced with --format) and dispatch to the
// readers of each format (plain text here; markdown.h, html_text.h, pdf_text.h, mail.h, records.h,
// chat_exports.h, messenger.h). Not here: cleaning, redaction, tokenization.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "data/mail.h"
#include "data/markdown.h"
#include "data/messenger.h"
#include "data/record.h"

namespace hearth::data {

enum class Format { kTxt, kMd, kHtml, kPdf, kEml, kMbox, kJsonl, kJson, kChatgpt, kClaude, kWhatsapp, kTelegram };

const char* format_name(Format f);
// Parses a --format value (txt|md|html|pdf|eml|mbox|jsonl|json|chatgpt|claude|whatsapp|telegram). Throws
// ConfigError naming `option`.
Format format_parse(const std::string& name, const std::string& option);
// The format a file's extension says (case-insensitive: .txt .text .md .markdown .html .htm .pdf .eml .mbox
// .jsonl .ndjson .json), or nullopt. The exports are told by their content (extract()).
std::optional<Format> format_detect(const std::filesystem::path& path);

struct ExtractOptions {
  MailOptions mail;
  MessengerOptions messenger;
  bool sniff = true;  // json and txt may turn out to be exports; false when --format forced the format
};

// Records of a file in format `f`; for json and txt, the content may select an export format instead (then
// Extracted::format names it). Problems (invalid UTF-8, a malformed JSON line, an encrypted PDF, an
// empty file) become issues with line numbers; a problem with the whole file sets skip_reason. Never
// throws for bad content.
Extracted extract(std::string_view bytes, Format f, const ExtractOptions& options);

}  // namespace hearth::data
