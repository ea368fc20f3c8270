// Fuzz target: the GGUF reader (io/gguf.h) and what hearth builds from GGUF metadata alone — the tokenizer and
// its chat template (tokenizer/gguf_vocab.h, chat/chat_template.h).
//
// The input is parsed from an exact-size copy in memory (MappedFile::from_bytes), so AddressSanitizer sees any
// read past its end. When the file is accepted:
//   - re-encoding the header, every key/value (GgufValue::encode) and every tensor info gives back exactly the
//     input's first bytes: the reader and the writer's encoding agree byte for byte;
//   - every typed getter answers or throws FormatError, every array item is reachable, every tensor's bytes lie
//     inside the data section (and are read), at its alignment, with nbytes matching dims and type;
//   - tokenizer_from_gguf either throws FormatError or gives a tokenizer that encodes and decodes a fixed text,
//     and a chat_template in its metadata parses and renders or throws FormatError.
// Seeds: fuzz_seeds writes the kq256 GGUFs' headers and small hearth-written GGUFs (gguf_write).
#include <cstdint>
#include <cstring>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "fuzz_util.h"
#include "io/gguf.h"
#include "tokenizer/gguf_vocab.h"

using namespace hearth;
using namespace hearth::fuzz;

namespace {

void put(std::string& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_string(std::string& out, const std::string& s) {
  put(out, s.size(), 8);
  out += s;
}

// The header, metadata and tensor infos as gguf_write would encode them.
std::string head_encode(const io::GgufFile& f) {
  std::string out = "GGUF";
  put(out, f.version(), 4);
  put(out, f.tensors().size(), 8);
  put(out, f.metadata().size(), 8);
  for (const auto& kv : f.metadata()) {
    put_string(out, kv.key);
    put(out, static_cast<uint32_t>(kv.value.type()), 4);
    kv.value.encode(out);
  }
  for (const auto& t : f.tensors()) {
    put_string(out, t.name);
    put(out, t.dims.size(), 4);
    for (int64_t d : t.dims) put(out, static_cast<uint64_t>(d), 8);
    put(out, static_cast<uint32_t>(t.type), 4);
    put(out, t.offset, 8);
  }
  return out;
}

// Every item of an array (recursively), as callers iterate them.
void items_walk(const io::GgufValue& v) {
  if (!v.is_array()) return;
  for (uint64_t i = 0; i < v.size(); ++i) {
    io::GgufValue item = v.item(i);
    fuzz_require(item.type() == v.element_type(), "gguf", "an array item has another type than the array's");
    items_walk(item);
  }
}

// Each typed getter, as model and tokenizer code call them: an answer or a FormatError.
void getters_try(const io::GgufFile& f, const std::string& key) {
  auto attempt = [](auto&& get) {
    try {
      get();
    } catch (const FormatError&) {
    }
  };
  attempt([&] { f.get_string(key); });
  attempt([&] { f.get_uint(key); });
  attempt([&] { f.get_int(key); });
  attempt([&] { f.get_float(key); });
  attempt([&] { f.get_bool(key); });
  attempt([&] { f.get_array(key); });
  attempt([&] { f.get_string_array(key); });
  attempt([&] { f.get_int_array(key); });
  attempt([&] { f.get_float_array(key); });
}

void tensors_check(const io::GgufFile& f, const io::MappedFile& mapped) {
  const unsigned char* data_begin = mapped.data() + f.data_offset();
  const unsigned char* end = mapped.data() + mapped.size();
  for (const auto& t : f.tensors()) {
    fuzz_require(t.dims.size() <= 4, "gguf", "more than 4 dims");
    for (int64_t d : t.dims) fuzz_require(d >= 0, "gguf", "a dimension is negative");
    const auto& info = quant::ggml_type_info(t.type);
    fuzz_require(t.numel() % info.block_size == 0, "gguf", "numel is not whole blocks");
    fuzz_require(static_cast<uint64_t>(t.numel() / info.block_size) * info.block_bytes == t.nbytes, "gguf",
                 "nbytes does not match dims and type");
    fuzz_require(t.offset % f.alignment() == 0, "gguf", "tensor offset not aligned");
    fuzz_require(t.nbytes == 0 || (t.data >= data_begin && t.data + t.nbytes <= end), "gguf",
                 "tensor bytes outside the data section");
    fuzz_touch(t.data, t.nbytes);
    fuzz_require(f.find_tensor(t.name) == &t, "gguf", "find_tensor() misses a listed tensor");
    (void)t.shape();
  }
}

// What hearth builds from the metadata alone: the tokenizer, and the chat template it carries.
void tokenizer_try(const io::GgufFile& f) {
  tokenizer::Tokenizer tok = tokenizer::tokenizer_from_gguf(f);
  const auto ids = tok.encode("Hello world! <s> 12345 ünïcödé\n\t  日本");
  tok.decode(ids, false);
  tok.decode(ids, true);
  (void)tok.summary();
  const auto& config = tok.config();
  if (config.is_object() && config.contains("chat_template")) {
    const nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
    chat::chat_template_apply(config, messages, true, nullptr, "fuzz.gguf");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz_expect_errors("gguf", [&] {
    auto mapped = io::MappedFile::from_bytes(fuzz_bytes(data, size), "fuzz.gguf");
    auto file = io::GgufFile::open(mapped);
    const std::string head = head_encode(*file);
    fuzz_require(head.size() <= size && std::memcmp(head.data(), data, head.size()) == 0, "gguf",
                 "re-encoded header, metadata and tensor infos differ from the input");
    fuzz_require(file->data_offset() <= size, "gguf", "data section starts past the end");
    for (const auto& kv : file->metadata()) {
      fuzz_require(file->find(kv.key) == &kv.value, "gguf", "find() misses a listed key");
      items_walk(kv.value);
      getters_try(*file, kv.key);
    }
    tensors_check(*file, *mapped);
    tokenizer_try(*file);
  });
  return 0;
}
