#include "data/extract.h"

#include <fmt/format.h>

#include "core/error.h"
#include "data/chat_exports.h"
#include "data/html_text.h"
#include "data/pdf_text.h"
#include "data/records.h"
#include "data/text_util.h"

namespace hearth::data {
namespace fs = std::filesystem;

namespace {

struct FormatName {
  Format format;
  const char* name;
};
constexpr FormatName kFormats[] = {{Format::kTxt, "txt"},           {Format::kMd, "md"},
                                   {Format::kHtml, "html"},         {Format::kPdf, "pdf"},
                                   {Format::kEml, "eml"},           {Format::kMbox, "mbox"},
                                   {Format::kJsonl, "jsonl"},       {Format::kJson, "json"},
                                   {Format::kChatgpt, "chatgpt"},   {Format::kClaude, "claude"},
                                   {Format::kWhatsapp, "whatsapp"}, {Format::kTelegram, "telegram"}};

Extracted whole_file_issue(uint64_t line, const std::string& reason) {
  Extracted ex;
  ex.issues.push_back({line, reason});
  ex.skip_reason = reason;
  return ex;
}

// txt, md, html: the file is one document, and must be UTF-8 (or declare Latin-1, for HTML).
Extracted text_document(std::string_view bytes, Format f) {
  std::string converted;
  uint64_t line = 0;
  std::string problem = utf8_problem(bytes, 1, &line);
  if (!problem.empty() && f == Format::kHtml) {
    std::string head = lower(bytes.substr(0, 2048));
    if (head.find("charset=iso-8859-1") != std::string::npos ||
        head.find("charset=windows-1252") != std::string::npos ||
        head.find("charset=\"iso-8859-1\"") != std::string::npos) {
      converted = latin1_to_utf8(bytes);
      bytes = converted;
      problem.clear();
    }
  }
  if (!problem.empty()) return whole_file_issue(line, problem);
  Record r;
  r.line = 1;
  if (f == Format::kMd) r.text = markdown_vault_text(markdown_body(bytes));
  else if (f == Format::kHtml) r.text = html_text(bytes);
  else r.text = std::string(bytes);
  Extracted ex;
  ex.records.push_back(std::move(r));
  return ex;
}

// A .json file: the exports by their shape, else training records; a forced export format must match.
Extracted json_document(std::string_view bytes, Format f, const ExtractOptions& options) {
  Extracted ex;
  nlohmann::json j;
  if (!json_document_parse(bytes, &j, &ex)) return ex;
  if (f == Format::kJson && options.sniff) {
    if (chatgpt_export_detect(j)) f = Format::kChatgpt;
    else if (claude_export_detect(j)) f = Format::kClaude;
    else if (telegram_export_detect(j)) f = Format::kTelegram;
  }
  switch (f) {
    case Format::kChatgpt:
      if (!chatgpt_export_detect(j)) break;
      return chatgpt_records(j);
    case Format::kClaude:
      if (!claude_export_detect(j)) break;
      return claude_records(j);
    case Format::kTelegram: return telegram_records(j, options.messenger);
    default: return records_from_json_value(j);
  }
  return whole_file_issue(0, fmt::format("not a {} export; expected conversations.json as the service writes it "
                                         "(docs/datasets.md)",
                                         f == Format::kChatgpt ? "ChatGPT" : "Claude"));
}

}  // namespace

const char* format_name(Format f) {
  for (const auto& e : kFormats)
    if (e.format == f) return e.name;
  return "?";
}

Format format_parse(const std::string& name, const std::string& option) {
  for (const auto& e : kFormats)
    if (name == e.name) return e.format;
  throw ConfigError(
      fmt::format("{}: expected auto|txt|md|html|pdf|eml|mbox|jsonl|json|chatgpt|claude|whatsapp|telegram, got '{}'",
                  option, name));
}

std::optional<Format> format_detect(const fs::path& path) {
  std::string ext = lower(path.extension().string());
  if (ext == ".txt" || ext == ".text") return Format::kTxt;
  if (ext == ".md" || ext == ".markdown") return Format::kMd;
  if (ext == ".html" || ext == ".htm") return Format::kHtml;
  if (ext == ".pdf") return Format::kPdf;
  if (ext == ".eml") return Format::kEml;
  if (ext == ".mbox") return Format::kMbox;
  if (ext == ".jsonl" || ext == ".ndjson") return Format::kJsonl;
  if (ext == ".json") return Format::kJson;
  return std::nullopt;
}

Extracted extract(std::string_view bytes, Format f, const ExtractOptions& options) {
  if (trim(bytes).empty()) return whole_file_issue(0, "empty file");
  if (f != Format::kPdf && looks_binary(bytes)) return whole_file_issue(0, "binary file (NUL bytes); expected text");
  if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);  // UTF-8 byte order mark
  switch (f) {
    case Format::kTxt:
      if (options.sniff && whatsapp_detect(bytes)) return whatsapp_records(bytes, options.messenger);
      return text_document(bytes, f);
    case Format::kMd:
    case Format::kHtml: return text_document(bytes, f);
    case Format::kWhatsapp: return whatsapp_records(bytes, options.messenger);
    case Format::kPdf: {
      PdfText pdf = pdf_text(bytes);
      if (!pdf.skip_reason.empty()) return whole_file_issue(0, pdf.skip_reason);
      Extracted ex;
      ex.records.push_back(Record{1, RecordKind::kText, pdf.text, {}, {}, {}, {}});
      return ex;
    }
    case Format::kEml: return mail_from_eml(bytes, options.mail);
    case Format::kMbox: return mail_from_mbox(bytes, options.mail);
    case Format::kJsonl: return records_from_jsonl(bytes);
    case Format::kJson:
    case Format::kChatgpt:
    case Format::kClaude:
    case Format::kTelegram: return json_document(bytes, f, options);
  }
  return {};
}

}  // namespace hearth::data
