#include "data/mail.h"

#include <cctype>
#include <map>
#include <regex>

#include <fmt/format.h>

#include "data/html_text.h"
#include "data/text_util.h"

namespace hearth::data {
namespace {

struct Part {
  std::map<std::string, std::string> headers;  // lower-case names, unfolded values
  std::string_view body;
};

Part part_split(std::string_view msg) {
  Part p;
  size_t pos = 0;
  std::string last;
  while (pos < msg.size()) {
    size_t nl = msg.find('\n', pos);
    size_t end = nl == std::string_view::npos ? msg.size() : nl;
    std::string_view line = msg.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = nl == std::string_view::npos ? msg.size() : nl + 1;
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !last.empty()) {
      p.headers[last] += " " + std::string(trim(line));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    last = lower(trim(line.substr(0, colon)));
    if (!p.headers.count(last)) p.headers[last] = std::string(trim(line.substr(colon + 1)));
    else last = "";  // keep the first occurrence; ignore continuations of repeats
  }
  p.body = msg.substr(std::min(pos, msg.size()));
  return p;
}

// `value`'s parameter `name` (boundary, charset), unquoted.
std::string header_param(const std::string& value, const std::string& name) {
  std::string lv = lower(value);
  size_t at = 0;
  while ((at = lv.find(name + "=", at)) != std::string::npos) {
    if (at == 0 || lv[at - 1] == ';' || lv[at - 1] == ' ' || lv[at - 1] == '\t') break;
    at += name.size();
  }
  if (at == std::string::npos) return "";
  size_t v = at + name.size() + 1;
  if (v < value.size() && value[v] == '"') {
    size_t q = value.find('"', v + 1);
    return value.substr(v + 1, q == std::string::npos ? std::string::npos : q - v - 1);
  }
  size_t e = value.find_first_of("; \t", v);
  return value.substr(v, e == std::string::npos ? std::string::npos : e - v);
}

std::string base64_decode(std::string_view s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = val(c);
    if (v < 0) continue;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

std::string qp_decode(std::string_view s, bool header) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (header && c == '_') {
      out += ' ';
    } else if (c == '=' && i + 2 < s.size() + 1 && i + 1 < s.size()) {
      if (s[i + 1] == '\n') {
        ++i;
        continue;
      }
      if (s[i + 1] == '\r' && i + 2 < s.size() && s[i + 2] == '\n') {
        i += 2;
        continue;
      }
      if (i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
          std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
      } else {
        out += c;
      }
    } else {
      out += c;
    }
  }
  return out;
}

// Bytes in `charset` to UTF-8; false when the charset is unsupported or the bytes are not valid in it.
bool charset_to_utf8(const std::string& bytes, const std::string& charset, std::string* out) {
  std::string cs = lower(charset);
  if (cs.empty() || cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii") {
    if (utf8_first_invalid(bytes)) {
      if (!cs.empty() && cs != "us-ascii" && cs != "ascii") return false;
      *out = latin1_to_utf8(bytes);  // undeclared 8-bit text: most often Latin-1
      return true;
    }
    *out = bytes;
    return true;
  }
  if (cs == "iso-8859-1" || cs == "latin1" || cs == "latin-1" || cs == "windows-1252" || cs == "cp1252" ||
      cs == "iso-8859-15") {
    *out = latin1_to_utf8(bytes);
    return true;
  }
  if (!utf8_first_invalid(bytes)) {
    *out = bytes;  // e.g. a charset label on pure ASCII text
    return true;
  }
  return false;
}

// RFC 2047 encoded words (=?charset?B|Q?...?=) in a header value.
std::string header_decode(const std::string& v) {
  static const std::regex kWord(R"(=\?([^?]+)\?([BbQq])\?([^?]*)\?=)");
  std::string out;
  auto begin = std::sregex_iterator(v.begin(), v.end(), kWord);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    std::string between = v.substr(last, it->position() - last);
    if (!(last > 0 && trim(between).empty())) out += between;  // whitespace between encoded words is dropped
    std::string raw = (*it)[2].str() == "B" || (*it)[2].str() == "b" ? base64_decode((*it)[3].str())
                                                                     : qp_decode((*it)[3].str(), true);
    std::string text;
    out += charset_to_utf8(raw, (*it)[1].str(), &text) ? text : raw;
    last = it->position() + it->length();
  }
  return out + v.substr(last);
}

struct BodyText {
  std::string plain, html;
  std::string problem;
};

void part_collect(std::string_view raw, BodyText& out, int depth);

void multipart_collect(const Part& p, const std::string& boundary, BodyText& out, int depth) {
  std::string delim = "--" + boundary;
  std::string_view b = p.body;
  size_t pos = b.find(delim);
  while (pos != std::string_view::npos) {
    size_t start = b.find('\n', pos);
    if (start == std::string_view::npos || b.compare(pos + delim.size(), 2, "--") == 0) break;
    size_t next = b.find("\n" + delim, start);
    std::string_view sub = b.substr(start + 1, next == std::string_view::npos ? std::string_view::npos : next - start);
    part_collect(sub, out, depth + 1);
    pos = next == std::string_view::npos ? next : next + 1;
  }
}

void part_collect(std::string_view raw, BodyText& out, int depth) {
  if (depth > 20) return;
  Part p = part_split(raw);
  std::string ctype = p.headers.count("content-type") ? p.headers["content-type"] : "text/plain";
  std::string type = lower(trim(ctype.substr(0, ctype.find(';'))));
  if (lower(p.headers["content-disposition"]).rfind("attachment", 0) == 0) return;
  if (starts_with(type, "multipart/")) {
    std::string boundary = header_param(ctype, "boundary");
    if (!boundary.empty()) multipart_collect(p, boundary, out, depth);
    return;
  }
  if (type != "text/plain" && type != "text/html") return;
  std::string enc = lower(trim(p.headers["content-transfer-encoding"]));
  std::string bytes = enc == "base64"             ? base64_decode(p.body)
                      : enc == "quoted-printable" ? qp_decode(p.body, false)
                                                  : std::string(p.body);
  std::string text;
  std::string charset = header_param(ctype, "charset");
  if (!charset_to_utf8(bytes, charset, &text)) {
    out.problem = fmt::format("body in charset '{}' is not valid or not supported; expected UTF-8 or Latin-1", charset);
    return;
  }
  std::string& dest = type == "text/plain" ? out.plain : out.html;
  if (!dest.empty()) dest += "\n\n";
  dest += text;
}

// One message's record text, or "" (with *problem set when something was wrong).
std::string message_text(std::string_view raw, const MailOptions& o, std::string* problem) {
  BodyText body;
  part_collect(raw, body, 0);
  std::string text = !body.plain.empty() ? body.plain : html_text(body.html);
  if (text.empty() && !body.problem.empty()) *problem = body.problem;
  text = mail_body_trim(text);
  if (o.headers && !text.empty()) {
    Part p = part_split(raw);
    std::string head;
    for (const char* h : {"from", "to", "date", "subject"}) {
      if (!p.headers.count(h)) continue;
      std::string name = h;
      name[0] = static_cast<char>(std::toupper(name[0]));
      head += name + ": " + header_decode(p.headers[h]) + "\n";
    }
    text = head + "\n" + text;
  }
  return text;
}

}  // namespace

std::string mail_body_trim(std::string_view body) {
  static const std::regex kWrote(R"(^(On|Le|Am|El) .{4,}(wrote|a écrit|schrieb|escribió)\s*:\s*$)");
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
      if (!kept.empty() && std::regex_match(std::string(kept.back()), kWrote)) kept.pop_back();
      else if (kept.size() >= 2 && ends_with(trim(kept.back()), "wrote:") &&
               std::regex_match(std::string(kept[kept.size() - 2]) + " " + std::string(kept.back()), kWrote)) {
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
  std::string problem;
  Record r;
  r.line = 1;
  r.text = message_text(bytes, options, &problem);
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
  std::string current;
  uint64_t line_no = 0, start_line = 0;
  bool in_message = false;
  auto finish = [&] {
    if (!in_message) return;
    std::string problem;
    Record r;
    r.line = start_line;
    r.text = message_text(current, options, &problem);
    if (!problem.empty()) ex.issues.push_back({start_line, problem});
    else if (!r.text.empty()) ex.records.push_back(std::move(r));
    current.clear();
  };
  bool prev_blank = true;
  for (std::string_view line : lines_split(bytes)) {
    ++line_no;
    if (prev_blank && starts_with(line, "From ")) {
      finish();
      in_message = true;
      start_line = line_no;
      prev_blank = false;
      continue;
    }
    prev_blank = line.empty();
    size_t gt = line.find_first_not_of('>');
    if (gt != std::string_view::npos && gt > 0 && line.compare(gt, 5, "From ") == 0) line.remove_prefix(1);
    current.append(line);
    current += '\n';
  }
  finish();
  if (line_no > 0 && ex.records.empty() && ex.issues.empty() && !starts_with(bytes, "From "))
    ex.issues.push_back({1, "not an mbox; expected the first line to start with 'From '"});
  return ex;
}

}  // namespace hearth::data
