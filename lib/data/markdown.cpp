#include "data/markdown.h"

#include <cctype>

#include "data/text_util.h"

namespace hearth::data {
namespace {

bool is_fence(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && i < 3 && line[i] == ' ') ++i;
  return line.substr(i, 3) == "```" || line.substr(i, 3) == "~~~";
}

// "key:: value" or "- key:: value" (Logseq block and page properties).
bool is_property_line(std::string_view line) {
  std::string_view t = trim(line);
  if (starts_with(t, "- ")) t = trim(t.substr(2));
  size_t i = 0;
  while (i < t.size() && (std::isalnum(static_cast<unsigned char>(t[i])) || t[i] == '_' || t[i] == '-')) ++i;
  return i > 0 && t.substr(i, 2) == "::" && (i + 2 == t.size() || t[i + 2] == ' ');
}

bool is_block_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// What a reader sees of [[inside]].
std::string wikilink_text(std::string_view inside) {
  size_t bar = inside.find('|');
  if (bar != std::string_view::npos) return std::string(trim(inside.substr(bar + 1)));
  size_t hash = inside.find('#');
  if (hash == std::string_view::npos) return std::string(trim(inside));
  std::string_view page = trim(inside.substr(0, hash)), heading = trim(inside.substr(hash + 1));
  if (starts_with(heading, "^") || heading.empty()) return std::string(page);
  if (page.empty()) return std::string(heading);
  return std::string(page) + " > " + std::string(heading);
}

// One line outside fenced code; `in_comment` carries an open %% comment across lines.
std::string line_reduce(std::string_view line, bool& in_comment) {
  std::string out;
  size_t i = 0;
  while (i < line.size()) {
    if (in_comment) {
      size_t end = line.find("%%", i);
      if (end == std::string_view::npos) return out;
      in_comment = false;
      i = end + 2;
      continue;
    }
    char c = line[i];
    if (c == '`') {  // inline code, as written
      size_t after = line.find_first_not_of('`', i);
      size_t run = after == std::string_view::npos ? 0 : after - i;
      size_t close = run == 0 ? std::string_view::npos : line.find(std::string(run, '`'), after);
      if (close == std::string_view::npos) {
        out.append(line.substr(i));
        return out;
      }
      out.append(line.substr(i, close + run - i));
      i = close + run;
      continue;
    }
    if (line.compare(i, 2, "%%") == 0) {
      in_comment = true;
      i += 2;
      continue;
    }
    if (c == '#' && line.compare(i + 1, 2, "[[") == 0) {  // Logseq's #[[multi word tag]]: the tag's words
      ++i;
      continue;
    }
    bool embed = line.compare(i, 3, "![[") == 0;
    if (embed || line.compare(i, 2, "[[") == 0) {
      size_t open = i + (embed ? 3 : 2), close = line.find("]]", open);
      if (close != std::string_view::npos) {
        if (!embed) out += wikilink_text(line.substr(open, close - open));
        i = close + 2;
        continue;
      }
    }
    if (line.compare(i, 2, "((") == 0) {
      size_t close = line.find("))", i + 2);
      if (close != std::string_view::npos && is_block_uuid(line.substr(i + 2, close - i - 2))) {
        i = close + 2;
        continue;
      }
    }
    if (line.compare(i, 2, "{{") == 0 && i + 2 < line.size() && std::isalpha(static_cast<unsigned char>(line[i + 2]))) {
      size_t close = line.find("}}", i + 2);
      if (close != std::string_view::npos) {
        i = close + 2;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace

std::string_view markdown_body(std::string_view text) {
  for (const char* fence : {"---", "+++"}) {
    std::string open = std::string(fence) + "\n";
    if (!starts_with(text, open) && !starts_with(text, std::string(fence) + "\r\n")) continue;
    size_t pos = text.find('\n') + 1;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string_view line = text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line == fence || (line == "..." && std::string(fence) == "---"))
        return nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
      if (nl == std::string_view::npos) break;
      pos = nl + 1;
    }
  }
  return text;
}

std::string markdown_vault_text(std::string_view text) {
  bool any = false;
  for (std::string_view mark : {"[[", "((", "{{", "%%", "::"}) any |= text.find(mark) != std::string_view::npos;
  if (!any) return std::string(text);
  std::string out;
  out.reserve(text.size());
  bool in_fence = false, in_comment = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    std::string_view line = text.substr(pos, end - pos);  // with its '\n'
    pos = end;
    if (!in_comment && is_fence(line)) in_fence = !in_fence;
    if (in_fence || (!in_comment && is_fence(line))) {
      out.append(line);
      continue;
    }
    if (!in_comment && is_property_line(line)) continue;
    bool had_nl = !line.empty() && line.back() == '\n';
    if (had_nl) line.remove_suffix(1);
    bool was_comment = in_comment;
    std::string reduced = line_reduce(line, in_comment);
    // A line (or bullet) that held only an embed, a macro or (part of) a comment leaves no empty line behind.
    std::string_view left = trim(reduced);
    if ((left.empty() || left == "-" || left == "*") && (trim(line) != left || was_comment)) continue;
    out += reduced;
    if (had_nl) out += '\n';
  }
  return out;
}

}  // namespace hearth::data
