// Format readers: each record shape and file format against hand-written inputs whose expected text is
// derived by reading the input (and, for HTML/mail, the rules of the formats: HTML character references,
// RFC 2045 quoted-printable and base64, mboxrd "From " quoting).
#include <catch2/catch.hpp>

#include "core/error.h"
#include "data/extract.h"
#include "data/html_text.h"
#include "data/mail.h"
#include "data/records.h"
#include "data/sources.h"
#include "data/text_util.h"
#include "data_test_util.h"
#include "io/atomic_file.h"

using namespace hearth;
using namespace hearth::data;

TEST_CASE("format_detect by extension, --format names", "[data]") {
  CHECK(format_detect("a/b/Notes.MD") == Format::kMd);
  CHECK(format_detect("x.htm") == Format::kHtml);
  CHECK(format_detect("x.ndjson") == Format::kJsonl);
  CHECK(format_detect("x.mbox") == Format::kMbox);
  CHECK_FALSE(format_detect("photo.jpg").has_value());
  CHECK(format_parse("eml", "--format") == Format::kEml);
  CHECK_THROWS_AS(format_parse("docx", "--format"), ConfigError);
}

TEST_CASE("txt and md: front matter removed, invalid UTF-8 and empty files reported with lines", "[data]") {
  auto md = extract("---\ntitle: x\ndate: 2024-01-01\n---\n# Heading\n\nBody text.\n", Format::kMd, {});
  REQUIRE(md.records.size() == 1);
  CHECK(md.records[0].text == "# Heading\n\nBody text.\n");
  // "---" that is not front matter (no closing fence) stays.
  CHECK(markdown_body("---\nnot closed") == "---\nnot closed");
  CHECK(markdown_body("+++\ntitle = 'x'\n+++\nbody") == "body");

  auto bad = extract("line one\nline two\nbad \xff byte\n", Format::kTxt, {});
  CHECK(bad.records.empty());
  REQUIRE(bad.issues.size() == 1);
  CHECK(bad.issues[0].line == 3);
  CHECK(bad.issues[0].reason.find("invalid UTF-8 (byte 0xff)") != std::string::npos);
  CHECK_FALSE(bad.skip_reason.empty());

  auto empty = extract(" \n\n\t", Format::kTxt, {});
  CHECK(empty.skip_reason == "empty file");
  CHECK(extract(std::string_view("abc\0def", 7), Format::kTxt, {}).skip_reason.find("binary") != std::string::npos);
  // Overlong encodings and surrogates are invalid UTF-8 (Unicode 15 table 3-7).
  CHECK(utf8_first_invalid("ok \xC0\xAF") == 3u);
  CHECK(utf8_first_invalid("\xED\xA0\x80") == 0u);
  CHECK_FALSE(utf8_first_invalid("caf\xC3\xA9 \xF0\x9F\x98\x80 \xEF\xBF\xBD").has_value());
}

TEST_CASE("html: visible text only, entities decoded, blocks become paragraphs", "[data]") {
  std::string html = R"(<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style>
<script>var x = "<p>not text</p>";</script></head>
<body><!-- a comment --><h1>Caf&eacute; &amp; Bar</h1>
<p>First   para<br>line two &lt;b&gt; &#233;&#x1F600;&nbsp;x</p>
<div>Second <b>bold</b> <a href="x.html" title="a > b">link</a></div>
<pre>  keep
   spaces</pre><noscript>enable js</noscript><p>&unknown; &amp</p></body></html>)";
  std::string expected =
      "Café & Bar\n\nFirst para\nline two <b> é😀\xC2\xA0x\n\nSecond bold link\n\n  keep\n   spaces\n\n&unknown; &";
  CHECK(html_text(html) == expected);
  // HTML5 character references (https://html.spec.whatwg.org/#numeric-character-reference-end-state): NUL and
  // surrogates become U+FFFD, "&lt" without ';' is a legacy name; every named reference is known (&Bfr; is
  // U+1D505, &rarrlp; U+21AC: Python's html.entities.html5 agrees, as does html.unescape on the first four).
  CHECK(html_text("<p>&#0;&#xD800;&#65;&lt &Bfr; &rarrlp;</p>") ==
        "\xEF\xBF\xBD\xEF\xBF\xBD"
        "A< \xF0\x9D\x94\x85 \xE2\x86\xAC");
  // Broken markup as a browser reads it: an unclosed <b>, a stray </div>, a <p> inside a <p>, a table without
  // its tbody; and a page of 100,000 nested elements (gumbo's time grows with the square of the depth).
  CHECK(html_text("<b>bold <i>both</b> after</div><p>one<p>two<table><tr><td>a<td>b</table>") ==
        "bold both after\n\none\n\ntwo\n\na b");
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<div>";
  CHECK(html_text(deep + "deep &amp; text</div>") == "deep &amp; text");  // read without the parser
  CHECK(html_text("<div><div><span>x &amp; y</span></div></div>") == "x & y");
  // A Latin-1 page is converted when it declares its charset in the first 2 KB, else reported.
  auto ex = extract("<p>caf\xE9</p>", Format::kHtml, {});
  CHECK(ex.records.empty());
  CHECK(ex.issues.at(0).line == 1);
  auto ok = extract("<meta charset=iso-8859-1><p>caf\xE9</p>", Format::kHtml, {});
  REQUIRE(ok.records.size() == 1);
  CHECK(ok.records[0].text == "caf\xC3\xA9");
}

TEST_CASE("jsonl: every record shape, malformed lines reported with their line", "[data]") {
  std::string jsonl =
      "{\"text\": \"plain\"}\n"
      "{\"prompt\": \"Q?\", \"completion\": \"A.\"}\n"
      "\n"
      "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": [{\"type\": "
      "\"text\", \"text\": \"U1\"}, {\"type\": \"image_url\"}, {\"type\": \"text\", \"text\": \"U2\"}]}, {\"role\": "
      "\"assistant\", \"content\": \"A\"}]}\n"
      "{\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}, {\"from\": \"gpt\", \"value\": \"yo\"}]}\n"
      "{not json\n"
      "{\"messages\": [{\"role\": \"bot\", \"content\": \"x\"}]}\n"
      "{\"title\": \"no known field\"}\n"
      "{\"prompt\": \"only prompt\"}\n"
      "[1, 2]\n"
      "{\"text\": 5}\n";
  auto ex = records_from_jsonl(jsonl);
  REQUIRE(ex.records.size() == 4);
  // A content part whose "type" is not a string is skipped like any other non-text part (it threw type_error).
  auto odd = records_from_jsonl(
      "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": 5, \"text\": \"x\"}, {\"type\": \"text\", "
      "\"text\": \"U\"}]}, {\"role\": \"assistant\", \"content\": \"A\"}]}\n");
  REQUIRE(odd.records.size() == 1);
  CHECK(ex.records[0].kind == RecordKind::kText);
  CHECK(ex.records[0].text == "plain");
  CHECK(ex.records[0].line == 1);
  CHECK(ex.records[1].kind == RecordKind::kCompletion);
  CHECK(ex.records[1].prompt == "Q?");
  CHECK(ex.records[1].completion == "A.");
  CHECK(ex.records[2].kind == RecordKind::kChat);
  CHECK(ex.records[2].line == 4);
  REQUIRE(ex.records[2].messages.size() == 3);
  CHECK(ex.records[2].messages[1].content == "U1U2");
  CHECK(ex.records[3].messages[0].role == "user");
  CHECK(ex.records[3].messages[1].role == "assistant");
  CHECK(ex.records[3].messages[1].content == "yo");
  REQUIRE(ex.issues.size() == 6);
  CHECK(ex.issues[0].line == 6);
  CHECK(ex.issues[0].reason.find("malformed JSON") != std::string::npos);
  CHECK(ex.issues[1].line == 7);
  CHECK(ex.issues[1].reason == "messages[0].role: expected system|user|assistant|tool, got 'bot'");
  CHECK(ex.issues[2].reason.find("unrecognized record") != std::string::npos);
  CHECK(ex.issues[3].reason.find("'prompt' and 'completion'") != std::string::npos);
  CHECK(ex.issues[4].reason == "expected a JSON object, got array");
  CHECK(ex.issues[5].reason == "text: expected a string, got number");
  CHECK(ex.issues[5].line == 11);

  auto bad_utf8 = records_from_jsonl("{\"text\": \"ok\"}\n{\"text\": \"\xff\"}\n");
  REQUIRE(bad_utf8.issues.size() == 1);
  CHECK(bad_utf8.issues[0].line == 2);
}

TEST_CASE("json: an array of records or one record", "[data]") {
  auto arr = records_from_json(R"([{"text": "a"}, {"oops": 1}, {"messages": [{"role": "user", "content": "q"}]}])");
  CHECK(arr.records.size() == 2);
  REQUIRE(arr.issues.size() == 1);
  CHECK(arr.issues[0].reason.rfind("record [1]: unrecognized record", 0) == 0);
  CHECK(records_from_json(R"({"text": "single"})").records.at(0).text == "single");
  auto broken = records_from_json("{\n\"text\": \"a\",\n oops\n}");
  CHECK(broken.issues.at(0).line == 3);
  CHECK_FALSE(broken.skip_reason.empty());
  // Nested deeper than io::kJsonMaxDepth: an issue, not a stack overflow (the record was copied level by level).
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  auto too_deep = records_from_json(R"([{"text": "a", "x": )" + deep + "}]");
  CHECK(too_deep.records.empty());
  CHECK(too_deep.skip_reason.find("nested deeper") != std::string::npos);
  auto too_deep_line = records_from_jsonl("{\"text\": \"a\"}\n{\"text\": \"b\", \"x\": " + deep + "}\n");
  CHECK(too_deep_line.records.size() == 1);
  REQUIRE(too_deep_line.issues.size() == 1);
  CHECK(too_deep_line.issues[0].line == 2);
  // A number beyond double's range: the file is skipped like any malformed JSON (it threw nlohmann's out_of_range).
  auto huge = records_from_json(R"([{"text": "a", "score": 1e400}])");
  CHECK(huge.records.empty());
  CHECK(huge.issues.at(0).reason.find("malformed JSON") != std::string::npos);
  CHECK_FALSE(huge.skip_reason.empty());
}

TEST_CASE("eml: plain part chosen, QP decoded, quotes and signature trimmed, headers only when asked", "[data]") {
  std::string eml =
      "From: Ann <ann@example.com>\r\nTo: bob@example.com\r\nSubject: =?UTF-8?B?Q2Fmw6k=?= plans\r\n"
      "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/alternative;\r\n boundary=\"XYZ\"\r\n\r\n"
      "preamble\r\n--XYZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
      "Let's meet at the caf=C3=A9 at noon. This line is soft=\r\n-wrapped.\r\n\r\n"
      "On Sun, 31 Dec 2023, Bob wrote:\r\n> Where shall we meet?\r\n> Anywhere.\r\n\r\n-- \r\nAnn\r\nPhone 555\r\n"
      "--XYZ\r\nContent-Type: text/html\r\n\r\n<p>HTML version</p>\r\n--XYZ--\r\n";
  auto ex = mail_from_eml(eml, {});
  REQUIRE(ex.records.size() == 1);
  CHECK(ex.records[0].text == "Let's meet at the caf\xC3\xA9 at noon. This line is soft-wrapped.");
  MailOptions with_headers{true};
  auto h = mail_from_eml(eml, with_headers);
  CHECK(h.records.at(0).text ==
        "From: Ann <ann@example.com>\nTo: bob@example.com\nDate: Mon, 1 Jan 2024 10:00:00 +0000\nSubject: Caf\xC3\xA9 "
        "plans\n\nLet's meet at the caf\xC3\xA9 at noon. This line is soft-wrapped.");

  // HTML-only mail, base64 Latin-1, and an attachment that must not be read.
  std::string html_only =
      "Content-Type: multipart/mixed; boundary=b1\n\n--b1\nContent-Type: text/html; charset=iso-8859-1\n"
      "Content-Transfer-Encoding: base64\n\nPHA+Q2Fm6SBvbGU8L3A+\n--b1\nContent-Type: text/plain\n"
      "Content-Disposition: attachment; filename=x.txt\n\nattached secret\n--b1--\n";
  auto ho = mail_from_eml(html_only, {});
  REQUIRE(ho.records.size() == 1);
  CHECK(ho.records[0].text == "Caf\xC3\xA9 ole");  // base64 of "<p>Caf\xE9 ole</p>"
}

TEST_CASE("mail_body_trim: Outlook originals, mobile signatures", "[data]") {
  CHECK(mail_body_trim("Sure.\n\n-----Original Message-----\nFrom: x\nold text") == "Sure.");
  CHECK(mail_body_trim("Yes!\n\nSent from my iPhone") == "Yes!");
  CHECK(mail_body_trim("Top.\n\nOn Mon, Jan 1, 2024 at 9:00 AM Bob Smith <bob@x.org>\nwrote:\n> q\n") == "Top.");
  CHECK(mail_body_trim("a > b is true\n>quoted") == "a > b is true");
}

TEST_CASE("mbox: messages split at From lines, >From unescaped, records carry their line", "[data]") {
  std::string mbox =
      "From ann@example.com Mon Jan  1 10:00:00 2024\nSubject: one\n\nFirst body.\n>From the start.\n\n"
      "From bob@example.com Tue Jan  2 10:00:00 2024\nSubject: two\n\nSecond body.\n\n"
      "From carl@example.com Wed Jan  3 10:00:00 2024\nSubject: three\nContent-Type: text/plain; charset=koi8-r\n\n\xc1\xc2\n";
  auto ex = mail_from_mbox(mbox, {});
  REQUIRE(ex.records.size() == 3);
  CHECK(ex.records[0].line == 1);
  CHECK(ex.records[0].text == "First body.\nFrom the start.");
  CHECK(ex.records[1].line == 7);
  CHECK(ex.records[1].text == "Second body.");
  // KOI8-R (RFC 1489) 0xC1 0xC2 are U+0430 U+0431; the hand-written reader knew 4 charsets and reported it.
  CHECK(ex.records[2].line == 12);
  CHECK(ex.records[2].text == "\xD0\xB0\xD0\xB1");
  CHECK(ex.issues.empty());
  // A charset nobody knows, with bytes that are not UTF-8: reported on the message's "From " line.
  auto unknown = mail_from_mbox(
      "From a@b Mon Jan  1 10:00:00 2024\nSubject: x\n\nok\n\n"
      "From c@d Mon Jan  1 10:00:00 2024\nContent-Type: text/plain; charset=x-no-such-charset\n\n\xff\xfe\n",
      {});
  CHECK(unknown.records.size() == 1);
  REQUIRE(unknown.issues.size() == 1);
  CHECK(unknown.issues[0].line == 6);
  CHECK(unknown.issues[0].reason.find("charset 'x-no-such-charset'") != std::string::npos);
}

TEST_CASE("mail through GMime: alternative parts, attachments counted, encoded headers, charsets", "[data]") {
  // A Takeout-style message: multipart/mixed holding multipart/alternative (plain preferred) and a PDF and an
  // attached message; a Q-encoded ISO-8859-1 sender and a B-encoded UTF-8 subject split over two encoded words.
  std::string eml =
      "From: =?ISO-8859-1?Q?Jos=E9_Mu=F1oz?= <jose@example.org>\r\nTo: ann@example.com\r\n"
      "Subject: =?UTF-8?B?R3LDvMOf?=\r\n =?UTF-8?Q?e_aus_K=C3=B6ln?=\r\nDate: Tue, 2 Jan 2024 09:00:00 +0100\r\n"
      "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
      "--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
      "--inner\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
      "Gr=FC=DFe =80 5 =96 see you.\r\n"
      "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>HTML twin</p>\r\n--inner--\r\n"
      "--outer\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
      "--outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: fwd\r\n\r\nforwarded text\r\n--outer--\r\n";
  auto ex = mail_from_eml(eml, MailOptions{true});
  REQUIRE(ex.records.size() == 1);
  // windows-1252: 0xFC u-umlaut, 0xDF sharp s, 0x80 euro sign, 0x96 en dash.
  CHECK(ex.records[0].text ==
        "From: Jos\xC3\xA9 Mu\xC3\xB1oz <jose@example.org>\nTo: ann@example.com\nDate: Tue, 2 Jan 2024 09:00:00 "
        "+0100\nSubject: Gr\xC3\xBC\xC3\x9F"
        "e aus K\xC3\xB6ln\n\nGr\xC3\xBC\xC3\x9F"
        "e \xE2\x82\xAC 5 \xE2\x80\x93 see you.");
  CHECK(ex.omitted["attachments"] == 2);  // the PDF and the attached message
  CHECK(mail_from_eml("no headers at all, just words", {}).records.size() <= 1);
}

TEST_CASE("pdf: text pages via poppler, encrypted and image-only PDFs are reported", "[data]") {
  auto dir = test::data_fixtures();
  auto text = extract(io::file_read(dir / "text.pdf"), Format::kPdf, {});
  REQUIRE(text.records.size() == 1);
  // The strings drawn by make_pdfs.py (PAGE1, PAGE2), one line per Tj, pages separated by a blank line.
  CHECK(text.records[0].text.find("Quarterly garden report\nThe tomatoes ripened early this year.") !=
        std::string::npos);
  CHECK(text.records[0].text.find("\n\nSecond page: the basil needs more water.") != std::string::npos);
  auto enc = extract(io::file_read(dir / "encrypted.pdf"), Format::kPdf, {});
  CHECK(enc.records.empty());
  CHECK(enc.skip_reason.find("encrypted") != std::string::npos);
  auto img = extract(io::file_read(dir / "image_only.pdf"), Format::kPdf, {});
  CHECK(img.skip_reason.find("no text layer") != std::string::npos);
  CHECK(extract("%PDF-1.4 garbage", Format::kPdf, {}).skip_reason.find("not a readable PDF") != std::string::npos);
  CHECK(extract("just text", Format::kPdf, {}).skip_reason.find("not a PDF") != std::string::npos);
}

TEST_CASE("sources_walk: recursion, hidden and VCS folders, globs, the output folder", "[data]") {
  auto dir = test::data_scratch("walk");
  for (const char* f : {"a.md", "sub/b.txt", "sub/deep/c.md", ".hidden.md", ".git/config", "sub/.obsidian/x.md",
                        "node_modules/m.md", "out/manifest.json", "archive/old.md"})
    test::file_put(dir / f, "x");
  auto names = [&](const WalkOptions& o) {
    std::vector<std::string> v;
    for (const auto& f : sources_walk({dir}, o)) v.push_back(f.path.lexically_relative(dir).generic_string());
    return v;
  };
  WalkOptions all;
  all.skip_dir = dir / "out";
  CHECK(names(all) == std::vector<std::string>{"a.md", "archive/old.md", "sub/b.txt", "sub/deep/c.md"});
  WalkOptions md = all;
  md.include = {"*.md"};
  md.exclude = {"archive/*"};
  CHECK(names(md) == std::vector<std::string>{"a.md", "sub/deep/c.md"});
  // An explicitly named hidden file is taken.
  CHECK(sources_walk({dir / ".hidden.md"}, {}).size() == 1);
  CHECK_THROWS_AS(sources_walk({dir / "missing"}, {}), IoError);
  CHECK(size_parse("64M", "--max-file-size") == 64u << 20);
  CHECK(size_parse("1000", "--max-file-size") == 1000u);
  CHECK_THROWS_AS(size_parse("12Q", "--max-file-size"), ConfigError);
}
