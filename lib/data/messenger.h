// Messenger exports, turned into conversations in which the person whose data it is (--me NAME) is the
// assistant, so that a model learns to answer like them; the other speakers are the user side.
//   WhatsApp (chat > More > Export chat > Without media): a .txt of messages, each starting with a header in
//     one of the two shapes WhatsApp writes, by platform and locale:
//       Android  "31/12/2023, 21:05 - Ann: text"        "12/31/23, 9:05 PM - Ann: text"
//       iOS      "[31/12/2023, 21:05:12] Ann: text"     "[12/31/23, 9:05:12 PM] Ann: text"
//     (date separators / . -; day-first or month-first told from the whole file: a first field above 12
//     means day-first, a second above 12 month-first, day-first when nothing tells). Lines without a header
//     continue the message before. Dropped: system lines (no "Name:", or iOS text that starts with U+200E),
//     "<Media omitted>" / "image omitted" / "<attached: ...>" (counted as media), deleted messages; the
//     "<This message was edited>" mark is removed.
//   Telegram Desktop (Settings > Advanced > Export Telegram data, machine-readable JSON): result.json, one chat
//     {name, type, id, messages} or a whole account {personal_information, chats: {list: [...]}}. Service
//     messages are dropped, text made of its pieces (strings and {"type", "text"} entities), messages with
//     only media counted, messages the person forwarded dropped (not their words).
// Messages are split into conversations at gaps of 6 hours or more (and after 48 turns); consecutive
// messages of one speaker are merged, and so are those of several others in a row (in a group chat each
// line then starts with "Name: "). A conversation without a message of the person is left out.
// Not here: the assistants' exports (chat_exports.h).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/record.h"

namespace hearth::data {

struct MessengerOptions {
  std::vector<std::string> me;  // the person's names as the export shows them (case-insensitive)
  std::string chat_name;        // for WhatsApp, from the file name ("WhatsApp Chat with Ann.txt" -> "Ann")
};

// Gap between messages that starts a new conversation, and the most turns one conversation holds.
constexpr int64_t kConversationGapSeconds = 6 * 3600;
constexpr size_t kConversationMaxTurns = 48;

// Whether `text` starts like a WhatsApp export: its first non-blank line is a message header, and so is another
// of its first 20.
bool whatsapp_detect(std::string_view text);
// The chat name a WhatsApp export's file name carries ("WhatsApp Chat with Ann" -> "Ann"), or "".
std::string whatsapp_chat_name(const std::string& file_stem);
// Records of a WhatsApp export (each starts at its first message's line). Without a matching --me the
// whole file is an issue that lists the speakers found.
Extracted whatsapp_records(std::string_view text, const MessengerOptions& options);

// Whether a parsed JSON file looks like a Telegram Desktop export.
bool telegram_export_detect(const nlohmann::json& j);
// Records of a Telegram export (position "chat 'Ann' message 1234"). Without --me, a whole-account export's
// personal_information names the person; otherwise as for WhatsApp.
Extracted telegram_records(const nlohmann::json& j, const MessengerOptions& options);

}  // namespace hearth::data
