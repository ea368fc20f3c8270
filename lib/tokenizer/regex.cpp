// PCRE2 wrapper for tokenizer patterns. See regex.h.
#include "tokenizer/regex.h"

#include <memory>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/signals.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

namespace {

// Rewrites \s and \S so that they match what Oniguruma's do (White_Space incl. U+0085).
std::string onig_compatible(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[++i];
      if (n == 's') {
        out += in_class ? "\\s\\x{85}" : "[\\s\\x{85}]";
      } else if (n == 'S' && !in_class) {
        out += "[^\\s\\x{85}]";
      } else {
        out += c;
        out += n;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // literal ']'
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

constexpr uint32_t kMatchLimit = 1'000'000, kDepthLimit = 100'000;

// Per-thread JIT stack and match data, so find_all needs no locks.
struct ThreadScratch {
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;
  ThreadScratch() {
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (jit_stack && context) pcre2_jit_stack_assign(context, nullptr, jit_stack);
    // Deliberate limits (PCRE2's defaults are 10M and 10M): a pattern that backtracks catastrophically on some
    // text gives up quickly instead of running for minutes; the tokenizer patterns real models ship need a few
    // dozen steps per match.
    if (context) {
      pcre2_set_match_limit(context, kMatchLimit);
      pcre2_set_depth_limit(context, kDepthLimit);
    }
  }
  ~ThreadScratch() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

ThreadScratch& scratch() {
  thread_local ThreadScratch s;
  return s;
}

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  Where where;          // where the pattern was read, for match errors
  std::string pattern;  // as written
  ~Code() { pcre2_code_free(code); }

  // A match that failed with PCRE2 error `rc` (limits hit: catastrophic backtracking): the file's fault, named.
  [[noreturn]] void match_failed(size_t text_size, int rc) const {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(rc, buffer, sizeof(buffer));
    throw_format(where,
                 "regex " + json_brief(pattern) + " gave up on a text of " + std::to_string(text_size) +
                     " bytes (PCRE2 error " + std::to_string(rc) + ": " + reinterpret_cast<const char*>(buffer) + ")",
                 "a pattern that matches without catastrophic backtracking");
  }
};

Regex::Regex(const std::string& pattern, const Where& where) : code_(std::make_unique<Code>()) {
  code_->where = where;
  code_->pattern = pattern;
  const std::string translated = onig_compatible(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), PCRE2_UTF | PCRE2_UCP,
                              &error, &offset, nullptr);
  if (!code_->code) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error, buffer, sizeof(buffer));
    throw_format(where, "bad regex at offset " + std::to_string(offset) + ": " + reinterpret_cast<const char*>(buffer),
                 "a PCRE2-compatible pattern", json_brief(pattern));
  }
  pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE);  // optional: falls back to the interpreter
}

Regex::~Regex() = default;

bool Regex::search(std::string_view text, std::vector<Span>* groups) const {
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), pcre2_match_data_free);
  const int rc = pcre2_match(code_->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, PCRE2_NO_UTF_CHECK,
                             data.get(), scratch().context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) code_->match_failed(text.size(), rc);
  if (groups) {
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.get());
    const uint32_t n = pcre2_get_ovector_count(data.get());
    groups->clear();
    for (uint32_t g = 0; g < n; ++g) {
      if (ov[2 * g] == PCRE2_UNSET) groups->emplace_back(std::string_view::npos, std::string_view::npos);
      else groups->emplace_back(ov[2 * g], ov[2 * g + 1]);
    }
  }
  return true;
}

void Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  auto& s = scratch();
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr), pcre2_match_data_free);
  pcre2_match_data* md = data.get();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  for (size_t matches = 1; pos <= text.size(); ++matches) {
    if (matches % 4096 == 0) interrupt_point();  // a long text in an interruptible scope (core/signals.h)
    const int rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, s.context);
    if (rc < 0) {
      if (rc == PCRE2_ERROR_NOMATCH) break;
      code_->match_failed(text.size(), rc);
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] > ov[0]) {
      out.emplace_back(ov[0], ov[1]);
      pos = ov[1];
    } else {  // empty match: step over one character
      if (ov[0] >= text.size()) break;
      pos = ov[0] + utf8_char_len(static_cast<unsigned char>(text[ov[0]]));
    }
  }
}

Pattern::Pattern(const nlohmann::json& j, const Where& where) {
  if (j.is_object() && j.size() == 1 && j.contains("String") && j["String"].is_string()) {
    literal_ = j["String"].get<std::string>();
  } else if (j.is_object() && j.size() == 1 && j.contains("Regex") && j["Regex"].is_string()) {
    regex_ = std::make_unique<Regex>(j["Regex"].get<std::string>(), where / "Regex");
  } else {
    throw_format(where, "bad pattern", "{\"String\": ...} or {\"Regex\": ...}", json_brief(j));
  }
}

void Pattern::find_all(std::string_view text, std::vector<Span>& out) const {
  if (regex_) return regex_->find_all(text, out);
  if (literal_.empty()) return;
  size_t pos = 0;
  while ((pos = text.find(literal_, pos)) != std::string_view::npos) {
    out.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
    if (out.size() % 65536 == 0) interrupt_point();
  }
}

std::string pattern_replace(const Pattern& pattern, std::string_view text, std::string_view content) {
  std::vector<Span> spans;
  pattern.find_all(text, spans);
  if (spans.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + spans.size() * content.size());
  size_t prev = 0;
  for (const auto& [a, b] : spans) {
    out.append(text.substr(prev, a - prev));
    out.append(content);
    prev = b;
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace hearth::tokenizer
