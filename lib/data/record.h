// What a source file yields before cleaning and tokenization: records (a plain text, a chat, or a
// prompt/completion pair) with the line they came from, and the problems found on the way.
// Not here: how records are found in a file (extract.h) or turned into tokens (encode.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace hearth::data {

enum class RecordKind : uint8_t {
  kText = 0,        // a document: trained on entirely
  kChat = 1,        // messages rendered with the chat template; loss on assistant turns
  kCompletion = 2,  // prompt + completion; loss on the completion
};

struct Message {
  std::string role;  // system | user | assistant | tool
  std::string content;
};

// Where a record came from beyond its line, for conversation exports: the position inside a JSON export
// ("conversation [3]"), the conversation's title and its first and last times. Kept in the manifest.
struct Provenance {
  std::string position;  // "" when the line says it
  std::string title;
  std::string created, updated;  // ISO 8601 as the export gives it ("2024-05-01T10:00:00Z"), "" when unknown
  bool empty() const { return position.empty() && title.empty() && created.empty() && updated.empty(); }
};

struct Record {
  uint64_t line = 0;  // 1-based line in the source file where the record starts (0: the whole file)
  RecordKind kind = RecordKind::kText;
  std::string text;                // kText
  std::vector<Message> messages;   // kChat
  std::string prompt, completion;  // kCompletion
  Provenance provenance;
};

// A problem with part of a file (a bad JSON line) or the whole file (line 0).
struct Issue {
  uint64_t line = 0;
  std::string reason;
};

// The result of reading one file. `skip_reason` is set when nothing in the file could be used because
// of a problem with the file as a whole (it is then also the first issue).
struct Extracted {
  std::vector<Record> records;
  std::vector<Issue> issues;
  std::string skip_reason;
  std::string format;                       // the format the content was read as, when it refined the extension's
  std::map<std::string, uint64_t> omitted;  // parts left out on purpose, by kind ("attachments", "media")
};

// Every text field of a record (text; message contents; prompt and completion), for cleaning passes.
template <typename F>
void record_for_each_text(Record& r, F&& f) {
  f(r.text);
  f(r.prompt);
  f(r.completion);
  for (auto& m : r.messages) f(m.content);
}

}  // namespace hearth::data
