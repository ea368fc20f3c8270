// What a source file yields before cleaning and tokenization: records (a plain text, a chat, or a
// prompt/completion pair) with the line they came from, and the problems found on the way.
// Not here: how records are found in a file (extract.h) or turned into tokens (encode.h).
#pragma once

#include <cstdint>
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

struct Record {
  uint64_t line = 0;  // 1-based line in the source file where the record starts (0: the whole file)
  RecordKind kind = RecordKind::kText;
  std::string text;                // kText
  std::vector<Message> messages;   // kChat
  std::string prompt, completion;  // kCompletion
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
