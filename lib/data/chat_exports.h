// The conversation exports of chat assistants, as their services write them (docs/datasets.md says how to get
// each):
//   ChatGPT (Settings > Data controls > Export): conversations.json, an array of conversations, each a tree of
//     "mapping" nodes {id, message, parent, children} whose "current_node" is the last message of the branch
//     the person last saw. The branch is walked from current_node back to the root; user, assistant and system
//     text parts are kept; tool messages, assistant messages addressed to a tool (recipient other than "all"),
//     hidden messages (metadata.is_visually_hidden_from_conversation), non-text content (code, execution
//     output, browsing, reasoning, custom instructions) and empty messages are skipped.
//   Claude (Settings > Privacy > Export data): conversations.json, an array of conversations
//     {uuid, name, created_at, updated_at, chat_messages: [{sender: human|assistant, text, content: [...]}]};
//     the text blocks of "content" (else "text") are kept, tool use, tool results, thinking and attachments not.
// Consecutive messages of one role are merged (a blank line between them). Each conversation is one chat
// record whose provenance holds its position, title and times. Not here: the JSON record shapes
// (records.h), messengers (messenger.h).
#pragma once

#include <nlohmann/json.hpp>

#include "data/record.h"

namespace hearth::data {

// Whether a parsed JSON file looks like each export (an array whose first object has "mapping" /
// "chat_messages").
bool chatgpt_export_detect(const nlohmann::json& j);
bool claude_export_detect(const nlohmann::json& j);

// The conversations of an export. A conversation that cannot be read is an issue naming its position
// ("conversation [3] 'Title': mapping: expected an object, got string"); a file of another shape is a
// whole-file issue. Empty conversations are left out silently. Never throws for bad content.
Extracted chatgpt_records(const nlohmann::json& j);
Extracted claude_records(const nlohmann::json& j);

}  // namespace hearth::data
