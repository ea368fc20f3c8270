#include "data/messenger.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/text_util.h"
#include "tokenizer/regex.h"

namespace hearth::data {
using nlohmann::json;

namespace {

constexpr std::string_view kLrm = "\xE2\x80\x8E";  // U+200E LEFT-TO-RIGHT MARK, iOS's mark on system lines

// One message of a messenger chat, before it becomes a turn.
struct ChatMessage {
  std::string speaker;    // as shown
  bool me = false;        // written by the person
  int64_t time = 0;       // seconds (local time read as UTC for WhatsApp)
  std::string time_text;  // ISO 8601 as the export gives it
  std::string text;
  uint64_t line = 0;     // WhatsApp: the header's line
  std::string position;  // Telegram: "chat 'Ann' message 12"
};

std::string name_key(std::string_view name) {
  std::string_view t = trim(name);
  while (starts_with(t, "~")) t = trim(t.substr(1));
  if (starts_with(t, "\xE2\x80\xAF")) t = trim(t.substr(3));  // "~ Name" of non-contacts (U+202F)
  return lower(t);
}

std::set<std::string> me_keys(const std::vector<std::string>& me) {
  std::set<std::string> keys;
  for (const auto& m : me) keys.insert(name_key(m));
  return keys;
}

// "no --me NAME given; expected ..., one of: Ann (120), Bob (80)" for the most frequent speakers.
std::string speakers_list(const std::vector<ChatMessage>& msgs) {
  std::map<std::string, size_t> counts;
  for (const auto& m : msgs) ++counts[m.speaker];
  std::vector<std::pair<size_t, std::string>> by_count;
  for (auto& [name, n] : counts) by_count.emplace_back(n, name);
  std::sort(by_count.rbegin(), by_count.rend());
  std::string out;
  for (size_t i = 0; i < by_count.size() && i < 8; ++i)
    out += fmt::format("{}'{}' ({})", i ? ", " : "", by_count[i].second, by_count[i].first);
  if (by_count.size() > 8) out += fmt::format(" and {} more", by_count.size() - 8);
  return out.empty() ? "none" : out;
}

struct Conversation {
  Record record;
  bool has_me = false;
  std::string last_user_speaker;  // for "Name: " lines in group chats
};

// Messages (in order) -> records, one per conversation that holds a message of the person.
void conversations_build(const std::vector<ChatMessage>& msgs, const std::string& chat_name, Extracted& ex) {
  std::set<std::string> others;
  for (const auto& m : msgs)
    if (!m.me) others.insert(m.speaker);
  const bool group = others.size() > 1;
  Conversation c;
  int64_t last_time = 0;
  auto finish = [&] {
    if (c.has_me && !c.record.messages.empty()) ex.records.push_back(std::move(c.record));
    c = Conversation();
  };
  for (const auto& m : msgs) {
    auto& turns = c.record.messages;
    const std::string role = m.me ? "assistant" : "user";
    bool new_turn = turns.empty() || turns.back().role != role;
    if (!turns.empty() &&
        (m.time - last_time >= kConversationGapSeconds || (new_turn && turns.size() >= kConversationMaxTurns)))
      finish();
    last_time = m.time;
    if (turns.empty()) {
      c.record.kind = RecordKind::kChat;
      c.record.line = m.line;
      c.record.provenance.position = m.position;
      c.record.provenance.title = chat_name;
      c.record.provenance.created = m.time_text;
    }
    c.record.provenance.updated = m.time_text;
    std::string text = group && !m.me ? m.speaker + ": " + m.text : m.text;
    if (turns.empty() || turns.back().role != role) turns.push_back({role, std::move(text)});
    else turns.back().content += "\n" + text;
    c.has_me |= m.me;
  }
  finish();
}

// The whole-file issue when the person cannot be told apart, or "".
std::string me_problem(const std::vector<ChatMessage>& msgs, const std::vector<std::string>& me, const char* what) {
  if (msgs.empty() || std::any_of(msgs.begin(), msgs.end(), [](const ChatMessage& m) { return m.me; })) return "";
  if (me.empty())
    return fmt::format("{}: no --me NAME given; expected the name you appear under, one of: {}", what,
                       speakers_list(msgs));
  return fmt::format("{}: no messages from --me '{}'; expected one of the speakers: {}", what, fmt::join(me, "', '"),
                     speakers_list(msgs));
}

void whole_file_issue(Extracted& ex, std::string reason) {
  ex.issues.insert(ex.issues.begin(), {0, std::move(reason)});
  ex.skip_reason = ex.issues.front().reason;
  ex.records.clear();
}

// ---- WhatsApp ----

const tokenizer::Regex& whatsapp_header() {
  // Groups: 1-3 the date's three fields, 4 hour, 5 minute, 6 second, 7 'a'/'p' of AM/PM. (?| numbers both
  // alternatives' groups alike: iOS "[date, time] " and Android "date, time - ".
  static const tokenizer::Regex re(
      R"(^(?:\x{200E})?(?|\[(\d{1,4})[./-](\d{1,2})[./-](\d{1,4}),? (\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?)"
      R"((?:[ \x{202F}\x{A0}]?([AaPp])\.? ?[Mm]\.?)?\] |(\d{1,4})[./-](\d{1,2})[./-](\d{1,4}),? (\d{1,2})[:.](\d{2}))"
      R"((?:[:.](\d{2}))?(?:[ \x{202F}\x{A0}]?([AaPp])\.? ?[Mm]\.?)? - ))",
      tokenizer::Where{"whatsapp", "header"});
  return re;
}

struct WaHeader {
  int f[3] = {0, 0, 0};
  int hour = 0, minute = 0, second = 0;
  char ampm = 0;
  size_t body = 0;  // where "Name: text" starts
};

bool whatsapp_header_parse(std::string_view line, WaHeader* h) {
  std::vector<tokenizer::Span> g;
  if (line.empty() || (!std::isdigit(static_cast<unsigned char>(line[0])) && line[0] != '[' && line[0] != '\xE2'))
    return false;
  if (!whatsapp_header().search(line, &g)) return false;
  auto num = [&](int i) {
    return g[i].first == std::string_view::npos
               ? 0
               : std::stoi(std::string(line.substr(g[i].first, g[i].second - g[i].first)));
  };
  for (int i = 0; i < 3; ++i) h->f[i] = num(i + 1);
  h->hour = num(4);
  h->minute = num(5);
  h->second = num(6);
  h->ampm = g[7].first == std::string_view::npos ? 0 : static_cast<char>(std::tolower(line[g[7].first]));
  h->body = g[0].second;
  return true;
}

enum class DateOrder { kDayMonth, kMonthDay, kYearMonth };

DateOrder date_order(const std::vector<WaHeader>& headers) {
  bool day_first = false, month_first = false;
  for (const auto& h : headers) {
    if (h.f[0] >= 1000) return DateOrder::kYearMonth;
    day_first |= h.f[0] > 12;
    month_first |= h.f[1] > 12;
  }
  return month_first && !day_first ? DateOrder::kMonthDay : DateOrder::kDayMonth;
}

void whatsapp_time(const WaHeader& h, DateOrder order, ChatMessage* m) {
  int y = h.f[2], mo = h.f[1], d = h.f[0];
  if (order == DateOrder::kMonthDay) std::swap(mo, d);
  if (order == DateOrder::kYearMonth) {
    y = h.f[0];
    d = h.f[2];
  }
  if (y < 100) y += 2000;
  int hour = h.hour % 24;
  if (h.ampm == 'p' && hour < 12) hour += 12;
  if (h.ampm == 'a' && hour == 12) hour = 0;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = std::clamp(mo, 1, 12) - 1;
  tm.tm_mday = std::clamp(d, 1, 31);
  tm.tm_hour = hour;
  tm.tm_min = h.minute % 60;
  tm.tm_sec = h.second % 60;
  m->time = static_cast<int64_t>(::timegm(&tm));
  m->time_text = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", y, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec);
}

std::string strip_lrm(std::string_view s) {
  std::string out;
  for (size_t p = 0; p < s.size();) {
    size_t at = s.find(kLrm, p);
    out.append(s.substr(p, (at == std::string_view::npos ? s.size() : at) - p));
    if (at == std::string_view::npos) break;
    p = at + kLrm.size();
  }
  return out;
}

// What to do with a message's text: "" keep, else the kind it is dropped as.
const char* whatsapp_drop(std::string_view raw, std::string* text) {
  const bool marked = starts_with(trim(raw), kLrm);  // iOS: system lines and media placeholders
  std::string t = std::string(trim(strip_lrm(raw)));
  for (std::string_view edited : {"<This message was edited>", "<Diese Nachricht wurde bearbeitet.>"})
    if (ends_with(t, edited)) t = std::string(trim(std::string_view(t).substr(0, t.size() - edited.size())));
  if (t == "<Media omitted>" || t == "null" || starts_with(t, "<attached: ") ||
      (marked && (ends_with(t, " omitted") || t == "sticker omitted")))
    return "media";
  if (t == "This message was deleted" || t == "This message was deleted." || t == "You deleted this message" ||
      t == "You deleted this message.")
    return "deleted";
  if (marked || t.empty()) return "system";
  *text = std::move(t);
  return "";
}

}  // namespace

bool whatsapp_detect(std::string_view text) {
  if (starts_with(text, "\xEF\xBB\xBF")) text.remove_prefix(3);
  // The first non-blank line is a header, and so is at least one more of the first 20 (a note that merely starts
  // with a date is not a chat).
  size_t pos = 0, seen = 0, headers = 0;
  while (pos < text.size() && seen < 20) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, (nl == std::string_view::npos ? text.size() : nl) - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (trim(line).empty()) continue;
    WaHeader h;
    const bool header = utf8_problem(line).empty() && whatsapp_header_parse(line, &h);
    if (seen++ == 0 && !header) return false;
    if (header && ++headers >= 2) return true;
  }
  return false;
}

std::string whatsapp_chat_name(const std::string& stem) {
  for (std::string_view prefix : {"WhatsApp Chat with ", "WhatsApp Chat - ", "WhatsApp-Chat mit "})
    if (starts_with(stem, prefix)) return stem.substr(prefix.size());
  return "";
}

Extracted whatsapp_records(std::string_view text, const MessengerOptions& options) {
  Extracted ex;
  ex.format = "whatsapp";
  uint64_t bad_line = 0;
  std::string problem = utf8_problem(text, 1, &bad_line);
  if (!problem.empty()) {
    whole_file_issue(ex, problem);
    ex.issues.front().line = bad_line;
    return ex;
  }
  // First pass: headers and their message bodies (continuation lines appended).
  std::vector<WaHeader> headers;
  std::vector<std::string> bodies;
  std::vector<uint64_t> lines;
  uint64_t line_no = 0;
  for (std::string_view line : lines_split(text)) {
    ++line_no;
    WaHeader h;
    if (whatsapp_header_parse(line, &h)) {
      headers.push_back(h);
      bodies.emplace_back(line.substr(h.body));
      lines.push_back(line_no);
    } else if (!bodies.empty()) {
      bodies.back() += "\n";
      bodies.back() += line;
    }
  }
  if (headers.empty()) {
    whole_file_issue(ex,
                     "not a WhatsApp chat export; expected lines such as '[31/12/2023, 21:05:12] Name: text' or "
                     "'31/12/2023, 21:05 - Name: text'");
    return ex;
  }
  const DateOrder order = date_order(headers);
  const std::set<std::string> me = me_keys(options.me);
  std::vector<ChatMessage> msgs;
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string& body = bodies[i];
    size_t colon = body.find(": ");
    if (colon == std::string::npos || starts_with(body, kLrm)) continue;  // a system line ("Ann created group")
    ChatMessage m;
    m.speaker = std::string(trim(strip_lrm(body.substr(0, colon))));
    const char* dropped = whatsapp_drop(std::string_view(body).substr(colon + 2), &m.text);
    if (*dropped) {
      if (std::string(dropped) == "media") ++ex.omitted["media"];
      continue;
    }
    m.me = me.count(name_key(m.speaker)) > 0;
    m.line = lines[i];
    whatsapp_time(headers[i], order, &m);
    msgs.push_back(std::move(m));
  }
  if (std::string p = me_problem(msgs, options.me, "WhatsApp chat"); !p.empty()) {
    whole_file_issue(ex, p);
    return ex;
  }
  conversations_build(msgs, options.chat_name, ex);
  return ex;
}

// ---- Telegram ----

namespace {

std::string str_of(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// A message's "text": a string, or an array of strings and {"type", "text"} entities.
std::string telegram_text(const json& m) {
  auto it = m.find("text");
  if (it == m.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  std::string out;
  if (it->is_array())
    for (const auto& piece : *it) {
      if (piece.is_string()) out += piece.get<std::string>();
      else out += str_of(piece, "text");
    }
  return out;
}

bool telegram_media(const json& m) {
  for (const char* k : {"photo", "file", "media_type", "sticker_emoji", "poll", "location_information",
                        "contact_information", "game_title", "invoice_information"})
    if (m.contains(k)) return true;
  return false;
}

struct TelegramMe {
  std::set<std::string> names;  // name_key()s
  std::set<std::string> ids;    // "user123"
};

void telegram_chat(const json& chat, const TelegramMe& me, Extracted& ex, std::vector<ChatMessage>& all) {
  auto it = chat.find("messages");
  if (it == chat.end() || !it->is_array()) return;
  std::string name = str_of(chat, "name");
  if (name.empty() && str_of(chat, "type") == "saved_messages") name = "Saved Messages";
  std::vector<ChatMessage> msgs;
  for (const auto& m : *it) {
    if (!m.is_object() || str_of(m, "type") != "message") continue;  // service messages: joins, calls, pins
    ChatMessage cm;
    cm.speaker = str_of(m, "from");
    std::string from_id = str_of(m, "from_id");
    cm.me = me.ids.count(from_id) > 0 || me.names.count(name_key(cm.speaker)) > 0;
    cm.text = std::string(trim(telegram_text(m)));
    if (cm.text.empty()) {
      if (telegram_media(m)) ++ex.omitted["media"];
      continue;
    }
    if (cm.me && m.contains("forwarded_from")) {
      ++ex.omitted["forwarded"];
      continue;
    }
    if (cm.speaker.empty()) cm.speaker = from_id.empty() ? "?" : from_id;  // a deleted account
    std::string unixtime = str_of(m, "date_unixtime");
    if (!unixtime.empty() && unixtime.size() < 18 &&
        std::all_of(unixtime.begin(), unixtime.end(), [](char c) { return c >= '0' && c <= '9'; }))
      cm.time = std::stoll(unixtime);
    cm.time_text = str_of(m, "date");
    auto id = m.find("id");
    cm.position = fmt::format("chat '{}' message {}", name,
                              id != m.end() && id->is_number_integer() ? id->dump() : "?");
    msgs.push_back(std::move(cm));
  }
  all.insert(all.end(), msgs.begin(), msgs.end());
  conversations_build(msgs, name, ex);
}

}  // namespace

bool telegram_export_detect(const json& j) {
  if (!j.is_object()) return false;
  if (j.contains("chats") && j["chats"].is_object() && j["chats"].contains("list")) return true;
  auto it = j.find("messages");
  if (it == j.end() || !it->is_array() || !j.contains("type")) return false;
  for (const auto& m : *it)
    if (m.is_object()) return m.contains("date") && !m.contains("role");
  return j.contains("id") && j.contains("name");
}

Extracted telegram_records(const json& j, const MessengerOptions& options) {
  Extracted ex;
  ex.format = "telegram";
  if (!telegram_export_detect(j)) {
    whole_file_issue(ex, "not a Telegram Desktop export; expected result.json with 'messages' or 'chats'");
    return ex;
  }
  TelegramMe me;
  std::vector<std::string> me_names = options.me;
  for (const auto& n : options.me) me.names.insert(name_key(n));
  auto pi = j.find("personal_information");
  if (me_names.empty() && pi != j.end() && pi->is_object()) {
    auto uid = pi->find("user_id");
    if (uid != pi->end() && uid->is_number_integer()) me.ids.insert("user" + uid->dump());
    std::string full = str_of(*pi, "first_name");
    if (!str_of(*pi, "last_name").empty()) full += " " + str_of(*pi, "last_name");
    if (!trim(full).empty()) {
      me.names.insert(name_key(full));
      me_names.push_back(full);
    }
  }
  std::vector<ChatMessage> all;
  if (j.contains("chats")) {
    for (const char* group : {"chats", "left_chats"}) {
      auto g = j.find(group);
      if (g == j.end() || !g->is_object() || !g->contains("list") || !(*g)["list"].is_array()) continue;
      for (const auto& chat : (*g)["list"])
        if (chat.is_object()) telegram_chat(chat, me, ex, all);
    }
  } else {
    telegram_chat(j, me, ex, all);
  }
  if (std::string p = me_problem(all, me_names, "Telegram export"); !p.empty()) whole_file_issue(ex, p);
  return ex;
}

}  // namespace hearth::data
