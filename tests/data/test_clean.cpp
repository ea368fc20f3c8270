// Cleaning, exact/near duplicate detection and redaction, against hand-derived expectations: the cleanup
// rules of clean.h, exact Jaccard similarities computed here independently of the MinHash code, and
// redaction samples in the published token formats (AWS access key IDs, GitHub PATs, PEM blocks, Luhn).
#include <catch2/catch.hpp>

#include <cctype>
#include <set>

#include "core/error.h"
#include "data/clean.h"
#include "data/dedup.h"
#include "data/redact.h"

using namespace hearth;
using namespace hearth::data;

TEST_CASE("text_clean: NFC, line endings, controls, blank runs, trailing blanks", "[data]") {
  // e + U+0301 (combining acute) composes to U+00E9 (UAX #15).
  CHECK(text_clean("Cafe\xCC\x81") == "Caf\xC3\xA9");
  CHECK(text_clean("\r\n\n  a  \r\nb\t \rc") == "a\nb\nc");
  CHECK(text_clean("p1\n\n\n\n\np2\n \n \np3\n") == "p1\n\np2\n\np3");
  CHECK(text_clean("x\x01y\x7Fz") == "xyz");
  CHECK(text_clean("zero\xE2\x80\x8Bwidth\xEF\xBB\xBF no\xC2\xA0"
                   "break") == "zerowidth no break");
  CHECK(text_clean("  indented\n    code") == "indented\n    code");
  CHECK(text_clean("line\xE2\x80\xA8next") == "line\nnext");
  CHECK(text_clean(" \n\t\n") == "");
}

TEST_CASE("text_key: same words and order, any spacing, same key", "[data]") {
  CHECK(text_key("a b\n\nc") == text_key("  a\tb c "));
  CHECK_FALSE(text_key("a b c") == text_key("a b  d"));
  CHECK_FALSE(text_key("A b c") == text_key("a b c"));  // case matters
}

namespace {
// Independent reference: word 5-gram shingle sets (lower-cased alphanumeric words) and their Jaccard index.
std::set<std::string> shingles(const std::string& text) {
  std::vector<std::string> words;
  std::string w;
  for (char c : text + " ") {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '\'') w += static_cast<char>(std::tolower(c));
    else if (!w.empty()) words.push_back(std::move(w)), w.clear();
  }
  std::set<std::string> s;
  for (size_t i = 0; i + 5 <= words.size(); ++i)
    s.insert(words[i] + " " + words[i + 1] + " " + words[i + 2] + " " + words[i + 3] + " " + words[i + 4]);
  return s;
}
double jaccard(const std::string& a, const std::string& b) {
  auto sa = shingles(a), sb = shingles(b);
  size_t inter = 0;
  for (const auto& x : sa) inter += sb.count(x);
  return static_cast<double>(inter) / static_cast<double>(sa.size() + sb.size() - inter);
}
std::string words(int n, int seed, int changed_every = 0) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    int v = (i * 7919 + seed * 104729) % 1000;
    if (changed_every && i % changed_every == 0) v += 5000;
    s += "s" + std::to_string(seed) + "w" + std::to_string(v) + (i % 12 == 11 ? ".\n" : " ");
  }
  return s;
}
}  // namespace

TEST_CASE("minhash estimates the Jaccard similarity of 5-word shingles", "[data]") {
  std::string base = words(400, 1);
  CHECK(minhash_similarity(minhash(base), minhash(base)) == 1.0);
  CHECK(minhash("too short for five").empty());
  for (int every : {97, 40, 15, 6}) {
    std::string variant = words(400, 1, every);
    double exact = jaccard(base, variant);
    double est = minhash_similarity(minhash(base), minhash(variant));
    // 128 hashes: standard error sqrt(J(1-J)/128) <= 0.045; allow 4 sigma.
    CHECK(std::abs(est - exact) < 0.18);
    INFO("every " << every << " exact " << exact << " est " << est);
  }
  CHECK(minhash_similarity(minhash(base), minhash(words(400, 2))) < 0.1);
  // Case and punctuation do not matter.
  CHECK(minhash_similarity(minhash("The quick brown fox jumps over the lazy dog"),
                           minhash("the QUICK brown fox, jumps over the lazy dog!")) == 1.0);
}

TEST_CASE("NearDupIndex: near copies are duplicates at the threshold, others are not", "[data]") {
  std::string base = words(300, 3);
  std::string near = words(300, 3, 97);  // ~4 words of 300 changed: Jaccard ~0.88
  std::string far = words(300, 3, 4);    // every 4th word changed: Jaccard ~0.1
  REQUIRE(jaccard(base, near) > 0.8);
  REQUIRE(jaccard(base, far) < 0.3);
  NearDupIndex idx(0.8);
  CHECK(idx.bands() * idx.rows() <= kMinHashSize);
  CHECK_FALSE(idx.check_and_add(minhash(base)));
  CHECK(idx.check_and_add(minhash(near)));
  CHECK_FALSE(idx.check_and_add(minhash(far)));
  CHECK_FALSE(idx.check_and_add({}));  // too short: never a duplicate
  NearDupIndex strict(0.99);
  CHECK_FALSE(strict.check_and_add(minhash(base)));
  CHECK_FALSE(strict.check_and_add(minhash(near)));
}

TEST_CASE("redact: secrets by default, each opt-in kind with a typed placeholder and counts", "[data]") {
  RedactOptions def;
  RedactCounts counts;
  std::string text =
      "aws AKIAIOSFODNN7EXAMPLE and gh ghp_abcdefghijklmnopqrstuvwxyz0123456789 and "
      "https://ann:hunter2@example.com/x and wifi password: correct-horse ok\n"
      "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
      "mail ann@example.com call +1 (555) 123-4567 card 4111 1111 1111 1111 ip 192.168.1.20";
  std::string t = text;
  redact(t, def, counts);
  CHECK(t ==
        "aws [API_TOKEN] and gh [API_TOKEN] and https://ann:[PASSWORD]@example.com/x and wifi password: [PASSWORD] ok\n"
        "[PRIVATE_KEY]\n"
        "mail ann@example.com call +1 (555) 123-4567 card 4111 1111 1111 1111 ip 192.168.1.20");
  CHECK(counts == RedactCounts{{"api_token", 2}, {"password", 2}, {"private_key", 1}});
  // With a `kept` tally, what the default leaves in is found and counted, the text unchanged.
  RedactCounts counts_again, kept;
  std::string t_again = text;
  redact(t_again, def, counts_again, &kept);
  CHECK(t_again == t);
  CHECK(counts_again == counts);
  CHECK(kept == RedactCounts{{"card", 1}, {"email", 1}, {"ip", 1}, {"phone", 1}});
  CHECK(found_kept_describe(kept) ==
        "1 card, 1 email, 1 ip, 1 phone (--redact cards,emails,ips,phones to remove them)");
  CHECK(found_kept_describe({}) == "none");
  RedactCounts kept_secrets, c0;
  std::string t_secret = "token ghp_abcdefghijklmnopqrstuvwxyz0123456789";
  redact(t_secret, RedactOptions{false, false, false, false, false}, c0, &kept_secrets);
  CHECK(kept_secrets == RedactCounts{{"api_token", 1}});
  CHECK(found_kept_describe(kept_secrets) == "1 api_token (kept by --no-redact-secrets)");

  RedactOptions all;
  redact_parse("emails,phones,cards,ips", "--redact", &all);
  CHECK(redact_describe(all) == "secrets,emails,phones,cards,ips");
  RedactCounts c2;
  std::string t2 = text;
  RedactCounts kept2;
  redact(t2, all, c2, &kept2);
  CHECK(kept2.empty());  // everything found was removed
  CHECK(t2.substr(t2.find("mail")) == "mail [EMAIL] call [PHONE] card [CARD] ip [IP]");
  CHECK(c2["email"] == 1);
  CHECK(c2["phone"] == 1);
  CHECK(c2["card"] == 1);
  CHECK(c2["ip"] == 1);
}

TEST_CASE("redact: validators keep look-alikes", "[data]") {
  RedactOptions all;
  redact_parse("all", "--redact", &all);
  RedactCounts c;
  // Luhn-invalid 16 digits, a short number, a date, a version string, an out-of-range dotted quad.
  std::string t = "4111 1111 1111 1112; room 12345; 2024-01-15; v1.2.3; 999.1.1.1; IPv6 fe80::1ff:fe23:4567:890a";
  redact(t, all, c);
  CHECK(t == "4111 1111 1111 1112; room 12345; 2024-01-15; v1.2.3; 999.1.1.1; IPv6 [IP]");
  CHECK_THROWS_AS(redact_parse("emails,ssn", "--redact", &all), ConfigError);
  RedactOptions none;
  redact_parse("none", "--redact", &none);
  CHECK(redact_describe(none) == "none");
}
