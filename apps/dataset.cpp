// hearth dataset inspect: what a dataset holds (stats from manifest.json) and what a model would learn from
// it: sequences decoded with the context spans (loss_mask 0) marked, every sequence with --all.
#include <unistd.h>

#include <iostream>

#include <fmt/format.h>

#include "apps/commands.h"
#include "core/error.h"
#include "data/dataset.h"
#include "data/manifest.h"
#include "data/redact.h"
#include "data/shard.h"
#include "tokenizer/tokenizer.h"

namespace hearth::app {
namespace {

struct DatasetInspectOptions {
  std::string dir;
  std::string model;  // default: the tokenizer copy inside the dataset
  int sequences = 3;
  bool all = false;
  bool verify = false;
  std::string split = "both";
};

struct Segment {
  bool target;
  std::string text;
};

// Runs of equal loss_mask, decoded.
std::vector<Segment> segments(const data::Sequence& s, const tokenizer::Tokenizer& tok) {
  std::vector<Segment> out;
  size_t i = 0;
  while (i < s.tokens.size()) {
    size_t j = i;
    while (j < s.tokens.size() && s.loss_mask[j] == s.loss_mask[i]) ++j;
    out.push_back({s.loss_mask[i] == 1, tok.decode(std::vector<int32_t>(s.tokens.begin() + i, s.tokens.begin() + j))});
    i = j;
  }
  return out;
}

std::string render(const std::vector<Segment>& segs, bool color) {
  std::string out;
  for (const auto& s : segs) {
    if (s.target) out += s.text;
    else out += color ? "\x1b[2m" + s.text + "\x1b[0m" : "«" + s.text + "»";
  }
  return out;
}

void stats_print(const nlohmann::json& m) {
  const auto& t = m["totals"];
  const auto& tk = m["tokenizer"];
  std::cout << fmt::format("dataset  schema {} generation {}  seq_len {}\n", m["schema_version"].get<int>(),
                           m["generation"].get<uint64_t>(), m["seq_len"].get<int64_t>());
  std::cout << fmt::format("tokenizer {} (from {})\n", tk["fingerprint"].get<std::string>(),
                           tk.value("model_dir", "?"));
  std::cout << fmt::format("files    {} used, {} skipped, {} with problems\n", t.value("files_used", 0),
                           t.value("files_skipped", 0), t.value("files_with_issues", 0));
  std::cout << fmt::format("records  {} -> {} documents ({} exact and {} near duplicates removed, {} truncated)\n",
                           t.value("records", 0), t.value("documents", 0), t.value("duplicates_exact", 0),
                           t.value("duplicates_near", 0), t.value("truncated", 0));
  std::string red;
  for (auto& [k, v] : t["redactions"].items())
    red += fmt::format("{}{} {}", red.empty() ? "" : ", ", v.get<uint64_t>(), k);
  std::cout << "redacted " << (red.empty() ? "nothing" : red) << "\n";
  data::RedactCounts kept;
  if (t.contains("found_kept") && t["found_kept"].is_object())
    for (auto& [k, v] : t["found_kept"].items())
      if (v.is_number_unsigned()) kept[k] = v.get<uint64_t>();
  std::cout << "kept     " << data::found_kept_describe(kept) << "\n";  // found, not redacted
  for (const char* split : {"train", "validation"}) {
    const auto& s = m["splits"][split];
    std::cout << fmt::format("{:<10} {} sequences, {} tokens, {} targets, {} documents, {} shards\n", split,
                             s["sequences"].get<uint64_t>(), s["tokens"].get<uint64_t>(),
                             s["target_tokens"].get<uint64_t>(), s["documents"].get<uint64_t>(), s["shards"].size());
  }
  for (const auto& src : m["sources"]) {
    if (src.contains("skipped"))
      std::cout << fmt::format("skipped  {}: {}\n", src["path"].get<std::string>(), src["skipped"].get<std::string>());
    else if (!src["issues"].empty())
      std::cout << fmt::format("problems {}: {} (first: {})\n", src["path"].get<std::string>(), src["issues"].size(),
                               src["issues"][0]["reason"].get<std::string>());
  }
}

// Recomputes every shard's SHA-256 against the manifest and reads every sequence.
void verify(const data::Dataset& ds, const std::filesystem::path& dir) {
  for (const char* split : {"train", "validation"})
    for (const auto& sh : ds.manifest()["splits"][split]["shards"]) {
      data::ShardReader r(dir / sh["file"].get<std::string>());
      if (r.file_sha256() != sh["sha256"].get<std::string>())
        throw FormatError(fmt::format("{}: SHA-256 does not match manifest.json; the shard is corrupt",
                                      (dir / sh["file"].get<std::string>()).string()));
    }
  for (auto split : {data::Split::kTrain, data::Split::kValidation})
    for (size_t i = 0; i < ds.size(split); ++i) ds.get(split, i);
}

void run_dataset_inspect(const DatasetInspectOptions& o, const GlobalOptions& g) {
  globals_apply(g);
  if (o.split != "both" && o.split != "train" && o.split != "validation")
    throw ConfigError(fmt::format("--split: expected train|validation|both, got '{}'", o.split));
  if (o.sequences < 0) throw ConfigError(fmt::format("--sequences: expected >= 0, got {}", o.sequences));
  auto ds = data::Dataset::open(o.dir);
  std::filesystem::path tok_dir = o.model.empty() ? std::filesystem::path(o.dir) /
                                                        ds.manifest()["tokenizer"].value("dir", "tokenizer")
                                                  : std::filesystem::path(o.model);
  auto tok = tokenizer::Tokenizer::load(tok_dir);
  if (!o.model.empty()) data::dataset_tokenizer_check(ds, o.model);
  if (o.verify) verify(ds, o.dir);
  bool color = isatty(STDOUT_FILENO) == 1;
  nlohmann::json seqs = nlohmann::json::array();
  if (!g.json) stats_print(ds.manifest());
  if (!g.json && o.sequences + o.all > 0)
    std::cout << (color ? "\n(dim text is context: loss_mask 0; the rest is trained on)\n"
                        : "\n(text in «» is context: loss_mask 0; the rest is trained on)\n");
  for (auto split : {data::Split::kTrain, data::Split::kValidation}) {
    const char* name = split == data::Split::kTrain ? "train" : "validation";
    if (o.split != "both" && o.split != name) continue;
    size_t n = o.all ? ds.size(split) : std::min<size_t>(ds.size(split), static_cast<size_t>(o.sequences));
    for (size_t i = 0; i < n; ++i) {
      auto s = ds.get(split, i);
      auto segs = segments(s, tok);
      size_t targets = std::count(s.loss_mask.begin(), s.loss_mask.end(), 1);
      if (g.json) {
        nlohmann::json js = nlohmann::json::array();
        for (const auto& sg : segs) js.push_back({{"target", sg.target}, {"text", sg.text}});
        seqs.push_back({{"split", name},
                        {"index", i},
                        {"tokens", s.tokens.size()},
                        {"target_tokens", targets},
                        {"doc_starts", s.doc_starts},
                        {"segments", js}});
      } else {
        std::cout << fmt::format("\n=== {} #{}: {} tokens, {} targets, {} document starts ===\n", name, i,
                                 s.tokens.size(), targets, s.doc_starts.size());
        std::cout << render(segs, color) << "\n";
      }
    }
  }
  if (g.json) {
    const auto& m = ds.manifest();
    json_print({{"dataset", o.dir},
                {"schema_version", m["schema_version"]},
                {"generation", m["generation"]},
                {"seq_len", m["seq_len"]},
                {"tokenizer", m["tokenizer"]},
                {"totals", m["totals"]},
                {"splits",
                 {{"train", {{"sequences", ds.size(data::Split::kTrain)}}},
                  {"validation", {{"sequences", ds.size(data::Split::kValidation)}}}}},
                {"verified", o.verify},
                {"sequences", seqs}});
  }
}

}  // namespace

void add_dataset(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto* cmd = app.add_subcommand("dataset", "Work with datasets made by hearth ingest");
  cmd->require_subcommand(1);
  auto o = std::make_shared<DatasetInspectOptions>();
  auto* inspect = cmd->add_subcommand("inspect", "Stats, and sequences decoded with their training spans marked");
  inspect->add_option("dir", o->dir, "Dataset folder")->required();
  inspect->add_option("--sequences,-n", o->sequences, "Sequences to show per split (default 3)");
  inspect->add_flag("--all", o->all, "Show every sequence (to audit what a model would learn)");
  inspect->add_option("--split", o->split, "train|validation|both (default both)");
  model_option_add(inspect, o->model, "Decode with this model's tokenizer (checked against the dataset)");
  inspect->add_flag("--verify", o->verify, "Check every shard's SHA-256 and read every sequence");
  inspect->callback([o, &g, &run] { run = [o, &g] { run_dataset_inspect(*o, g); }; });
}

}  // namespace hearth::app
