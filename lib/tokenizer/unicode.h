// UTF-8 helpers, the GPT-2 byte <-> unicode map, Unicode normalization forms and lower case, for the tokenizer
// (and ingest's cleanup).
//
// UTF-8 handling follows Rust's String::from_utf8_lossy (what HF tokenizers does): each maximal invalid
// subsequence becomes one U+FFFD (Unicode 15, ch. 3.9 "substitution of maximal subparts").
// The byte-level map is GPT-2's bytes_to_unicode(): printable Latin-1 bytes map to themselves, the other 68
// bytes to U+0100.. in byte order. The normalization forms (UAX #15) are utf8proc's (Debian libutf8proc-dev),
// whose Unicode version is utf8proc_unicode_version(); lowercase() is Rust's str::to_lowercase, which HF
// tokenizers' Lowercase normalizer calls: full mappings (U+0130 -> "i\u0307") and Final_Sigma.
// Not here: regexes (pre_tokenizer.h), normalizer JSON (normalizer.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hearth::tokenizer {

// Decodes the code point at s[pos] and advances pos past it. An invalid or truncated sequence yields
// U+FFFD and advances over its maximal invalid subpart (at least one byte). Requires pos < s.size().
uint32_t utf8_next(std::string_view s, size_t& pos);
// Appends the UTF-8 encoding of cp (cp must be <= 0x10FFFF and not a surrogate).
void utf8_append(std::string& out, uint32_t cp);
// True when s is well-formed UTF-8.
bool utf8_is_valid(std::string_view s);
// s with every maximal invalid subsequence replaced by U+FFFD (from_utf8_lossy).
std::string utf8_sanitize(std::string_view s);
// Number of bytes of the UTF-8 sequence that starts with byte b (1 for invalid lead bytes).
size_t utf8_char_len(unsigned char b);
// The number of bytes (1..3) at the end of s that begin a character more bytes could still complete ("\xE2\x82"
// of "€"): a proper prefix of a well-formed sequence. 0 when s ends in a whole character or in bytes no
// continuation makes valid ("\x80", "\xC0", "\xE0\x80"), whose U+FFFD are final.
size_t utf8_unfinished_tail(std::string_view s);

// GPT-2 byte-level map: the byte that code point cp stands for, or nullopt when cp is not in the map.
std::optional<uint8_t> unicode_to_byte(uint32_t cp);
// Every byte of `bytes` replaced by its byte-level character.
std::string byte_level_encode(std::string_view bytes);

// Unicode Normalization Forms C, D, KC and KD of UTF-8 text (invalid sequences first become U+FFFD). Fast
// paths: ASCII is returned unchanged, and for NFC any text without a code point >= U+0300. Throw
// std::bad_alloc only. Thread-safe.
std::string nfc(std::string_view text);
std::string nfd(std::string_view text);
std::string nfkc(std::string_view text);
std::string nfkd(std::string_view text);
// Lower case as Rust's str::to_lowercase (Unicode full lowercase mappings, Final_Sigma in context; Case_Ignorable
// approximated from general categories and the word-internal punctuation). Valid UTF-8 in, out.
std::string lowercase(std::string_view text);

// Unicode White_Space property (what Rust's char::is_whitespace tests).
bool is_unicode_whitespace(uint32_t cp);

}  // namespace hearth::tokenizer
