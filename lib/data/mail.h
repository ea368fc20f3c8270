// E-mail: single messages (.eml, RFC 5322 + MIME, RFC 2045-2047) and mailboxes (.mbox, as Google Takeout and
// mail clients write them: messages start at "From " lines; mboxrd ">From " body lines are unescaped), parsed
// by GMime 3 (Debian libgmime-3.0-dev): multipart structure, transfer encodings, charsets (any iconv knows),
// RFC 2047 encoded headers.
//
// The text trained on is the message's own plain-text body: the text/plain parts (of a multipart/alternative,
// the text/plain version, else the text/html one converted to text); attachments, non-text parts and attached
// messages are skipped and counted (Extracted::omitted["attachments"]). Then trimmed: quoted replies
// ("> ..." lines with their "On ... wrote:" line, everything after "-----Original Message-----"), and the
// signature (after a "-- " line, and "Sent from my ..." lines) removed. Headers are left out unless
// MailOptions::headers is set.
#pragma once

#include <string>
#include <string_view>

#include "data/record.h"

namespace hearth::data {

struct MailOptions {
  bool headers = false;  // prepend From/To/Date/Subject lines to each message's text
};

// The message in `bytes` (.eml) as one record (or an issue).
Extracted mail_from_eml(std::string_view bytes, const MailOptions& options);
// Every message of a mailbox, each a record whose line is its "From " line.
Extracted mail_from_mbox(std::string_view bytes, const MailOptions& options);
// The body text with quoted replies and the signature removed (exposed for tests).
std::string mail_body_trim(std::string_view body);

}  // namespace hearth::data
