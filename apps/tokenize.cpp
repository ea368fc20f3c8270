// hearth tokenize / detokenize: text <-> token ids with a model's tokenizer (for scripts and bug reports).
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "apps/commands.h"
#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  bool no_special = false;
  bool no_add_special = false;
};

struct DetokenizeOptions {
  std::string model;
  std::string ids;
  std::string file;
  bool skip_special = false;
};

void run_tokenize(const TokenizeOptions& o, const GlobalOptions& g) {
  auto tok = tokenizer::Tokenizer::load(o.model);
  std::string text = o.file.empty() ? o.text : text_file_read(o.file, "--file");
  tokenizer::EncodeOptions enc;
  enc.parse_special = !o.no_special;
  enc.add_special_tokens = !o.no_add_special;
  auto ids = tok.encode(text, enc);
  if (g.json) {
    json_print(ids);
    return;
  }
  std::cout << fmt::format("{}", fmt::join(ids, " ")) << std::endl;
}

// Ids separated by spaces, commas, newlines or in a JSON array.
std::vector<tokenizer::TokenId> ids_parse(const std::string& text, const std::string& option) {
  std::string cleaned = text;
  for (char& ch : cleaned)
    if (ch == ',' || ch == '[' || ch == ']') ch = ' ';
  std::istringstream in(cleaned);
  std::vector<tokenizer::TokenId> ids;
  std::string word;
  while (in >> word) {
    try {
      size_t used = 0;
      long v = std::stol(word, &used);
      if (used != word.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(word);
      ids.push_back(static_cast<tokenizer::TokenId>(v));
    } catch (const std::exception&) {
      throw ConfigError(fmt::format("{}: expected token ids (non-negative integers), got '{}'", option, word));
    }
  }
  return ids;
}

void run_detokenize(const DetokenizeOptions& o, const GlobalOptions& g) {
  auto tok = tokenizer::Tokenizer::load(o.model);
  std::string source = o.file.empty() ? o.ids : text_file_read(o.file, "--file");
  auto ids = ids_parse(source, o.file.empty() ? "--ids" : "--file");
  for (auto id : ids)
    if (static_cast<size_t>(id) >= tok.vocab_size())
      throw ConfigError(fmt::format("--ids: token id {} is outside the vocabulary of {}", id, tok.vocab_size()));
  std::string text = tok.decode(ids, o.skip_special);
  if (g.json) json_print({{"text", text}});
  else std::cout << text << std::endl;
}

}  // namespace

void add_tokenize(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto t = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "Text -> token ids");
  model_option_add(cmd, t->model, "Model folder (its tokenizer.json)")->required();
  auto* text = cmd->add_option("--text", t->text, "Text to tokenize");
  auto* file = cmd->add_option("--file", t->file, "Read the text from a file");
  text->excludes(file);
  cmd->add_flag("--no-special", t->no_special, "Treat special-token text as plain text");
  cmd->add_flag("--no-add-special", t->no_add_special, "Do not add BOS/EOS (add_special_tokens=False)");
  cmd->callback([t, &g, &run] { run = [t, &g] { run_tokenize(*t, g); }; });

  auto d = std::make_shared<DetokenizeOptions>();
  auto* dcmd = app.add_subcommand("detokenize", "Token ids -> text");
  model_option_add(dcmd, d->model, "Model folder (its tokenizer.json)")->required();
  auto* ids = dcmd->add_option("--ids", d->ids, "Ids separated by spaces or commas, or a JSON array");
  auto* dfile = dcmd->add_option("--file", d->file, "Read the ids from a file");
  ids->excludes(dfile);
  dcmd->add_flag("--skip-special", d->skip_special, "Leave special tokens out of the text");
  dcmd->callback([d, &g, &run] { run = [d, &g] { run_detokenize(*d, g); }; });
}

}  // namespace hearth::app
