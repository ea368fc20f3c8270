// Redaction of secrets and personal identifiers, applied to cleaned text before tokenization. Each match is
// replaced by a typed placeholder ("[EMAIL]") and counted by kind. Purely local (nothing is looked up).
//
// Kinds (docs/datasets.md has the exact patterns):
//   secrets (on by default): private_key  PEM/OpenSSH/PGP private key blocks        -> [PRIVATE_KEY]
//                            api_token    AWS, GitHub, GitLab, Slack, OpenAI/Anthropic, Stripe, Google,
//                                         Hugging Face token shapes and JWTs          -> [API_TOKEN]
//                            password     the password of user:password@ URLs and of
//                                         "password: ..." / "pwd=..." assignments     -> [PASSWORD]
//   emails: email   phones: phone (9-15 digits, with separators)   cards: card (13-19 digits, Luhn-valid)
//   ips: ip (IPv4 dotted quads, IPv6)                                   -> [EMAIL] [PHONE] [CARD] [IP]
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hearth::data {

struct RedactOptions {
  bool secrets = true;
  bool emails = false;
  bool phones = false;
  bool cards = false;
  bool ips = false;
};

// Parses a --redact list ("emails,phones,cards,ips,secrets", or "all" or "none") into `o` (additive,
// except "none" which also turns secrets off). Throws ConfigError naming `option`.
void redact_parse(const std::string& list, const std::string& option, RedactOptions* o);
// The enabled groups, e.g. "secrets,emails".
std::string redact_describe(const RedactOptions& o);

using RedactCounts = std::map<std::string, uint64_t>;  // kind -> replacements

// Redacts `text` in place; adds the number of replacements of each kind to `counts`. When `kept` is given, the
// kinds whose group is off are still looked for, and what is found (and left in the text) is counted there, so
// that a person can decide knowingly. Thread-safe.
void redact(std::string& text, const RedactOptions& o, RedactCounts& counts, RedactCounts* kept = nullptr);
// The --redact group that removes `kind` ("email" -> "emails", "api_token" -> "secrets").
const char* redact_group_of(const std::string& kind);
// "3 email, 1 phone (--redact emails,phones to remove them)" for counts of what was found and kept; "none" when empty.
std::string found_kept_describe(const RedactCounts& kept);

}  // namespace hearth::data
