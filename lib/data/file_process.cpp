#include "data/file_process.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"
#include "core/sha256.h"
#include "core/signals.h"
#include "data/clean.h"
#include "data/dedup.h"
#include "data/doc_cache.h"
#include "data/text_util.h"
#include "io/atomic_file.h"

namespace hearth::data {
namespace fs = std::filesystem;

namespace {

bool cache_present(const FileContext& ctx, const SourceEntry& e) {
  return !e.skipped.empty() || (!e.cache.empty() && fs::exists(ctx.options.out_dir / e.cache));
}

// Reads a whole file with read(2), so that a failing read (EIO, a vanished file) is an IoError rather
// than a short result.
std::string file_bytes(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno)));
  struct stat st {};
  std::string out;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      throw IoError(fmt::format("{}: read failed: {}", path.string(), std::strerror(err)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// The text duplicates are judged on: what the model would read, without template markup.
std::string dedup_text(const Record& r) {
  switch (r.kind) {
    case RecordKind::kText: return r.text;
    case RecordKind::kCompletion: return r.prompt + "\n" + r.completion;
    case RecordKind::kChat: {
      std::string s;
      for (const auto& m : r.messages) s += m.role + ": " + m.content + "\n";
      return s;
    }
  }
  return "";
}

// The whitespace at one end of `s`, reduced to what separates text: "\n" when it holds a line break, " "
// when it holds other blanks, "" when none. Prompt and completion are joined as written, so the blank
// between them must survive cleaning.
std::string edge_blank(const std::string& s, bool front) {
  size_t n = 0;
  while (n < s.size() && std::isspace(static_cast<unsigned char>(front ? s[n] : s[s.size() - 1 - n]))) ++n;
  std::string_view edge = front ? std::string_view(s).substr(0, n) : std::string_view(s).substr(s.size() - n);
  return edge.empty() ? "" : edge.find('\n') != std::string_view::npos ? "\n" : " ";
}

// Cleans and redacts every text of `r`; false when nothing is left to train on.
bool record_prepare(Record& r, const RedactOptions& redact_options, RedactCounts& counts, RedactCounts& kept) {
  if (r.kind == RecordKind::kCompletion) {
    std::string joint = edge_blank(r.prompt, false) + edge_blank(r.completion, true);
    std::string sep = joint.find('\n') != std::string::npos ? "\n" : joint.empty() ? "" : " ";
    r.prompt = text_clean(r.prompt);
    r.completion = text_clean(r.completion);
    redact(r.prompt, redact_options, counts, &kept);
    redact(r.completion, redact_options, counts, &kept);
    if (r.completion.empty()) return false;
    r.completion = sep + r.completion;
    return true;
  }
  bool any = false;
  record_for_each_text(r, [&](std::string& t) {
    if (t.empty()) return;
    t = text_clean(t);
    redact(t, redact_options, counts, &kept);
    any |= !t.empty();
  });
  return any;
}

// Extracts, prepares and encodes the records of `bytes`, filling `e` (records, issues, redactions).
std::vector<CachedDoc> documents_make(std::string_view bytes, Format f, const FileContext& ctx, SourceEntry& e) {
  ExtractOptions xo;
  xo.mail.headers = ctx.options.mail_headers;
  xo.messenger.me = ctx.options.me;
  xo.messenger.chat_name = whatsapp_chat_name(fs::path(e.path).stem().string());
  xo.sniff = !ctx.forced_format;
  Extracted ex = extract(bytes, f, xo);
  interrupt_point();  // between the phases of one large file (the worker's InterruptScope, core/signals.h)
  e.issues = ex.issues;
  e.skipped = ex.skip_reason;
  e.omitted = ex.omitted;
  if (!ex.format.empty()) e.format = ex.format;
  std::vector<CachedDoc> docs;
  if (!e.skipped.empty()) return docs;
  const RecordEncoder* encoder = nullptr;
  for (auto& r : ex.records) {
    interrupt_point();
    if (!record_prepare(r, ctx.options.redact, e.redactions, e.found_kept)) continue;
    interrupt_point();
    if (!encoder) encoder = &ctx.encoder();  // outside the try below: a tokenizer that failed to load ends the run
    ++e.records;
    CachedDoc d;
    d.line = r.line;
    std::string key_text = dedup_text(r);
    d.key = text_key(key_text);
    interrupt_point();
    d.minhash = minhash(key_text);
    try {
      d.doc = encoder->encode(r);
    } catch (const FormatError& err) {
      // A record of a JSON file has no line: its position names it.
      std::string where = r.line == 0 && !r.provenance.position.empty() ? r.provenance.position + ": " : "";
      e.issues.push_back({r.line, where + err.what()});
      --e.records;
      continue;
    }
    if (!r.provenance.title.empty() || !r.provenance.created.empty())
      e.provenance.push_back({r.line, std::move(r.provenance)});
    docs.push_back(std::move(d));
  }
  if (docs.empty() && e.issues.empty()) {
    e.issues.push_back({0, "empty file (no text after extraction and cleanup)"});
    e.skipped = e.issues.back().reason;
  } else if (docs.empty()) {
    e.skipped = fmt::format("nothing usable ({} problems)", e.issues.size());
  }
  return docs;
}

}  // namespace

FileOutcome file_process(const SourceFile& file, const SourceEntry* old, const FileContext& ctx) {
  FileOutcome out;
  SourceEntry& e = out.entry;
  e.path = file.path.string();
  e.size = file.size;
  e.mtime_ns = file.mtime_ns;
  bool reusable = old && ctx.key_unchanged && cache_present(ctx, *old);
  if (reusable && old->size == file.size && old->mtime_ns == file.mtime_ns) {
    out.entry = *old;
    out.status = FileStatus::kUnchanged;
    return out;
  }
  out.status = old ? FileStatus::kChanged : FileStatus::kAdded;
  std::optional<Format> f = ctx.forced_format ? ctx.forced_format : format_detect(file.path);
  if (f) e.format = format_name(*f);
  if (file.size > ctx.options.max_file_size) {
    e.skipped = fmt::format("larger than --max-file-size ({} > {} bytes)", file.size, ctx.options.max_file_size);
    return out;
  }
  if (!f) {
    e.skipped = fmt::format("unsupported file type '{}'; use --format to force one", file.path.extension().string());
    return out;
  }
  std::string bytes;
  try {
    bytes = file_bytes(file.path);
  } catch (const IoError& err) {
    e.issues.push_back({0, std::string(kUnreadable) + err.what()});
    e.skipped = e.issues.back().reason;
    return out;
  }
  out.bytes_read = bytes.size();
  e.size = bytes.size();
  interrupt_point();
  e.sha256 = sha256_hex(bytes);
  interrupt_point();
  if (reusable && old->sha256 == e.sha256) {  // touched, not changed
    SourceEntry kept = *old;
    kept.size = e.size;
    kept.mtime_ns = e.mtime_ns;
    out.entry = kept;
    out.status = FileStatus::kUnchanged;
    return out;
  }
  if (*f != Format::kPdf && looks_binary(bytes)) {
    e.skipped = "binary file (NUL bytes); expected text";
    return out;
  }
  std::vector<CachedDoc> docs = documents_make(bytes, *f, ctx, e);
  if (!e.skipped.empty()) return out;
  e.cache = "cache/" + sha256_hex(e.sha256 + "\n" + ctx.processing_key) + ".zst";
  doc_cache_write(ctx.options.out_dir / e.cache, docs);
  return out;
}

}  // namespace hearth::data
