// Fuzz target: tokenizer.json (tokenizer/tokenizer.h) — the JSON text, the BPE model (vocab, merges and their
// options), normalizers, pre-tokenizers (Split regexes included), post-processors, decoders and added tokens —
// and then the tokenizer it gives, on fixed text.
//
// The input is the whole tokenizer.json, parsed as Tokenizer::load parses it (io::json_parse, then
// Tokenizer::from_json without a tokenizer_config.json). When it loads: fixed texts are encoded (with and
// without special tokens; every id in range), the ids and the first 300 ids of the vocabulary decoded, a
// StreamDecoder fed the same ids must return whole characters and add up to decode() (its contract in
// tokenizer.h), and the GGUF description of the tokenizer (tokenizer_gguf_metadata) is built or refused with a
// FormatError.
// Seeds: stories260K's and kq256's tokenizer.json, a trimmed GPT-2 tokenizer.json (fuzz_seeds), fuzz/seeds/tokenizer.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/json_file.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

using namespace hearth;
using namespace hearth::fuzz;
using tokenizer::TokenId;

namespace {

const char* const kTexts[] = {
    "Hello world! It's 2024-05-01, isn't it?  Tabs\tand\nnewlines\r\n",
    "   leading and trailing spaces   ",
    "ünïcödé, 日本語のテキスト, emoji 🤗👍🏽, Ελληνικά, العربية",
    "<s>[INST] <|im_start|>user\nhi<|im_end|> </s><unk><|endoftext|>",
    "12345678901234567890 3.14159 x=y+z; foo_bar(baz) // 'quoted' \"double\"",
    "",
};

// A decoder with a Strip of more than one leading character (after Fuse, of the whole text): the context chunk a
// StreamDecoder decodes alone can lose more than in the whole text, so its pieces may drop a character there
// (as HF's DecodeStream does; see tokenizer.h).
bool strips_more_than_one(const nlohmann::json& decoder) {
  if (!decoder.is_object()) return false;
  if (decoder.contains("decoders") && decoder["decoders"].is_array())
    for (const auto& d : decoder["decoders"])
      if (strips_more_than_one(d)) return true;
  return decoder.contains("type") && decoder["type"] == "Strip" && decoder.contains("start") &&
         decoder["start"].is_number() && decoder["start"].get<double>() > 1;
}

// A StreamDecoder fed `ids` one at a time: every piece is whole UTF-8 characters, and the pieces add up to
// decode(ids) — exactly, unless decode() has U+FFFD in it (a byte-fallback run that a later byte made invalid
// changes text that was already streamed) or the decoder strips more than one leading character (both in
// StreamDecoder's contract, tokenizer.h).
void stream_check(const tokenizer::Tokenizer& tok, const std::vector<TokenId>& ids, bool skip_special) {
  const std::string whole = tok.decode(ids, skip_special);
  tokenizer::StreamDecoder stream(tok, skip_special);
  std::string streamed;
  for (TokenId id : ids) {
    const std::string piece = stream.push(id);
    if (!tokenizer::utf8_is_valid(piece))
      fuzz_fail("tokenizer", "StreamDecoder::push returned invalid UTF-8", fuzz_escape(piece).c_str());
    streamed += piece;
  }
  const std::string last = stream.flush();
  if (!tokenizer::utf8_is_valid(last))
    fuzz_fail("tokenizer", "StreamDecoder::flush returned invalid UTF-8", fuzz_escape(last).c_str());
  streamed += last;
  if (streamed != whole && whole.find("\xEF\xBF\xBD") == std::string::npos &&
      !strips_more_than_one(tok.definition().contains("decoder") ? tok.definition()["decoder"] : nlohmann::json())) {
    std::string ids_text;
    for (TokenId id : ids) ids_text += std::to_string(id) + " ";
    const std::string detail = "ids " + ids_text + (skip_special ? "(skip_special_tokens)" : "") + "\n  decode:   \"" +
                               fuzz_escape(whole) + "\"\n  streamed: \"" + fuzz_escape(streamed) + "\"";
    fuzz_fail("tokenizer", "StreamDecoder output differs from decode()", detail.c_str());
  }
}

void tokenizer_exercise(const tokenizer::Tokenizer& tok) {
  for (const char* text : kTexts) {
    for (bool special : {true, false}) {
      const auto ids = tok.encode(text, {special, special});
      for (TokenId id : ids)
        fuzz_require(id >= 0 && static_cast<size_t>(id) < tok.vocab_size(), "tokenizer",
                     "encode gave an id out of range");
      stream_check(tok, ids, false);
      stream_check(tok, ids, true);
    }
  }
  std::vector<TokenId> first;
  for (size_t id = 0; id < tok.vocab_size() && id < 300; ++id) {
    const auto token = tok.id_to_token(static_cast<TokenId>(id));
    if (!token) continue;
    first.push_back(static_cast<TokenId>(id));
    (void)tok.token_to_id(*token);
  }
  try {
    stream_check(tok, first, false);
  } catch (const FormatError&) {  // an id with no token string (a hole in the vocabulary)
  }
  (void)tok.bos_id(), (void)tok.eos_id(), (void)tok.pad_id();
  (void)tok.summary();
  (void)tok.merges();
  tokenizer::tokenizer_gguf_metadata(tok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_expect_errors("tokenizer", [&] {
    const nlohmann::json j = io::json_parse(std::string(fuzz_bytes(data, size)), "fuzz/tokenizer.json");
    const auto tok = tokenizer::Tokenizer::from_json(j, nlohmann::json(), "fuzz/tokenizer.json");
    tokenizer_exercise(tok);
  });
  return 0;
}
