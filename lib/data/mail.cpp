#include "data/mail.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "data/html_text.h"
#include "data/text_util.h"
#include "tokenizer/regex.h"

namespace hearth::data {
namespace {

// GMime's objects are GObjects: released with g_object_unref.
struct Unref {
  void operator()(void* p) const {
    if (p) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, Unref>;

void gmime_ready() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });  // never shut down: other threads may still parse
}

struct BodyText {
  std::string plain, html;
  std::string problem;
  uint64_t attachments = 0;
};

// A text part as UTF-8. GMime decodes the transfer encoding and converts a declared charset with iconv; an
// undeclared or unknown charset leaves the bytes as they are, so they are checked here.
void text_part_collect(GMimeTextPart* part, bool html, BodyText& out) {
  std::unique_ptr<char, decltype(&g_free)> raw(g_mime_text_part_get_text(part), g_free);
  if (!raw) return;
  std::string text = raw.get();
  if (utf8_first_invalid(text)) {
    const char* cs = g_mime_text_part_get_charset(part);
    std::string charset = cs ? lower(cs) : "";
    if (!charset.empty() && charset != "us-ascii" && charset != "ascii" && charset != "utf-8" && charset != "utf8") {
      out.problem = fmt::format("body in charset '{}' is not valid or not supported; expected a charset iconv knows",
                                cs);
      return;
    }
    text = latin1_to_utf8(text);  // undeclared 8-bit text: most often Latin-1 / windows-1252
  }
  std::string& dest = html ? out.html : out.plain;
  if (!dest.empty()) dest += "\n\n";
  dest += text;
}

void part_collect(GMimeObject* obj, BodyText& out, int depth);

// multipart/alternative: the plain-text version when there is one, else the HTML one (else whatever it holds).
void alternative_collect(GMimeMultipart* mp, BodyText& out, int depth) {
  BodyText best;
  int n = g_mime_multipart_get_count(mp);
  for (int i = 0; i < n; ++i) {
    BodyText one;
    part_collect(g_mime_multipart_get_part(mp, i), one, depth + 1);
    out.attachments += one.attachments;
    if (!one.plain.empty() && best.plain.empty()) best.plain = one.plain;
    if (!one.html.empty() && best.html.empty()) best.html = one.html;
    if (best.problem.empty()) best.problem = one.problem;
  }
  std::string& dest = !best.plain.empty() ? out.plain : out.html;
  const std::string& src = !best.plain.empty() ? best.plain : best.html;
  if (!src.empty()) dest += (dest.empty() ? "" : "\n\n") + src;
  if (best.plain.empty() && best.html.empty() && out.problem.empty()) out.problem = best.problem;
}

void part_collect(GMimeObject* obj, BodyText& out, int depth) {
  if (!obj || depth > 20) return;
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  if (GMIME_IS_MULTIPART(obj)) {
    auto* mp = GMIME_MULTIPART(obj);
    if (ct && g_mime_content_type_is_type(ct, "multipart", "alternative")) return alternative_collect(mp, out, depth);
    int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i) part_collect(g_mime_multipart_get_part(mp, i), out, depth + 1);
    return;
  }
  if (GMIME_IS_MESSAGE_PART(obj)) {  // a forwarded or attached message: not the writer's own text
    ++out.attachments;
    return;
  }
  if (!GMIME_IS_PART(obj)) return;
  const bool plain = ct && g_mime_content_type_is_type(ct, "text", "plain");
  const bool html = ct && g_mime_content_type_is_type(ct, "text", "html");
  if (g_mime_part_is_attachment(GMIME_PART(obj)) || !(plain || html) || !GMIME_IS_TEXT_PART(obj)) {
    ++out.attachments;
    return;
  }
  text_part_collect(GMIME_TEXT_PART(obj), html, out);
}

// mboxrd: a body line ">From " (any number of '>') was written with one '>' more than it had.
std::string from_unescape(std::string text) {
  if (text.find(">From ") == std::string::npos) return text;
  std::string out;
  out.reserve(text.size());
  for (std::string_view line : lines_split(text)) {
    size_t gt = line.find_first_not_of('>');
    if (gt != std::string_view::npos && gt > 0 && line.compare(gt, 5, "From ") == 0) line.remove_prefix(1);
    out.append(line);
    out += '\n';
  }
  return out;
}

// One message's record text, or "" (with *problem set when something was wrong).
std::string message_text(GMimeMessage* msg, const MailOptions& o, bool mbox, std::string* problem,
                         uint64_t* attachments) {
  BodyText body;
  part_collect(g_mime_message_get_mime_part(msg), body, 0);
  *attachments += body.attachments;
  std::string text = !body.plain.empty() ? body.plain : html_text(body.html);
  if (text.empty() && !body.problem.empty()) *problem = body.problem;
  if (mbox) text = from_unescape(std::move(text));
  text = mail_body_trim(text);
  if (o.headers && !text.empty()) {
    std::string head;
    for (const char* h : {"From", "To", "Date", "Subject"}) {
      const char* v = g_mime_object_get_header(GMIME_OBJECT(msg), h);  // RFC 2047 decoded, unfolded
      if (v) head += fmt::format("{}: {}\n", h, trim(v));
    }
    text = head + "\n" + text;
  }
  return text;
}

GPtr<GMimeParser> parser_over(std::string_view bytes, GMimeFormat format) {
  gmime_ready();
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), format);
  return parser;
}

}  // namespace

std::string mail_body_trim(std::string_view body) {
  static const tokenizer::Regex kWrote(R"(^(On|Le|Am|El) .{4,}(wrote|a écrit|schrieb|escribió)\s*:\s*$)",
                                       tokenizer::Where{"mail", "attribution"});
  auto wrote = [](const std::string& line) { return utf8_first_invalid(line) ? false : kWrote.search(line); };
  auto lines = lines_split(body);
  std::vector<std::string_view> kept;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line == "-- " || line == "--" || starts_with(line, "-----Original Message-----") ||
        (starts_with(line, "________________") && i + 1 < lines.size() && starts_with(lines[i + 1], "From:")))
      break;  // signature or the start of a quoted original: drop the rest
    if (!line.empty() && line[0] == '>') {
      // Drop the attribution ("On Mon, ... Ann wrote:") that introduces the quote, and blank lines before it.
      while (!kept.empty() && trim(kept.back()).empty()) kept.pop_back();
      if (!kept.empty() && wrote(std::string(kept.back()))) kept.pop_back();
      else if (kept.size() >= 2 && ends_with(trim(kept.back()), "wrote:") &&
               wrote(std::string(kept[kept.size() - 2]) + " " + std::string(kept.back()))) {
        kept.pop_back();
        kept.pop_back();
      }
      continue;
    }
    kept.push_back(line);
  }
  while (!kept.empty() && (trim(kept.back()).empty() || starts_with(kept.back(), "Sent from my ") ||
                           starts_with(kept.back(), "Get Outlook for ")))
    kept.pop_back();
  std::string out;
  for (auto l : kept) {
    out += l;
    out += '\n';
  }
  return std::string(trim(out));
}

Extracted mail_from_eml(std::string_view bytes, const MailOptions& options) {
  Extracted ex;
  auto parser = parser_over(bytes, GMIME_FORMAT_MESSAGE);
  GPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!msg) {
    ex.issues.push_back({1, "not a mail message; expected RFC 5322 headers and a body"});
    ex.skip_reason = ex.issues.back().reason;
    return ex;
  }
  std::string problem;
  uint64_t attachments = 0;
  Record r;
  r.line = 1;
  r.text = message_text(msg.get(), options, false, &problem, &attachments);
  if (attachments) ex.omitted["attachments"] = attachments;
  if (!problem.empty()) {
    ex.issues.push_back({1, problem});
    ex.skip_reason = problem;
  } else if (!r.text.empty()) {
    ex.records.push_back(std::move(r));
  }
  return ex;
}

Extracted mail_from_mbox(std::string_view bytes, const MailOptions& options) {
  Extracted ex;
  if (!starts_with(bytes, "From ")) {
    ex.issues.push_back({1, "not an mbox; expected the first line to start with 'From '"});
    return ex;
  }
  auto parser = parser_over(bytes, GMIME_FORMAT_MBOX);
  uint64_t attachments = 0, line = 1;
  size_t counted = 0;  // newlines are counted up to here
  while (!g_mime_parser_eos(parser.get())) {
    GPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), nullptr));
    if (!msg) break;
    const size_t at = static_cast<size_t>(std::max<gint64>(0, g_mime_parser_get_mbox_marker_offset(parser.get())));
    if (at >= counted && at <= bytes.size()) {
      line += static_cast<uint64_t>(std::count(bytes.begin() + counted, bytes.begin() + at, '\n'));
      counted = at;
    }
    std::string problem;
    Record r;
    r.line = line;
    r.text = message_text(msg.get(), options, true, &problem, &attachments);
    if (!problem.empty()) ex.issues.push_back({line, problem});
    else if (!r.text.empty()) ex.records.push_back(std::move(r));
  }
  if (attachments) ex.omitted["attachments"] = attachments;
  return ex;
}

}  // namespace hearth::data
