// hearth ingest: documents, notes, mail and chat exports -> a tokenized training dataset (lib/data/ingest.h,
// docs/datasets.md). Prints a summary on stdout (one JSON object with --json); progress and logs on stderr.
#include <iostream>

#include <fmt/format.h>

#include "apps/commands.h"
#include "core/error.h"
#include "core/log.h"
#include "data/ingest.h"
#include "data/sources.h"

namespace hearth::app {
namespace {

struct IngestCliOptions {
  data::IngestOptions ingest;
  std::vector<std::string> sources;
  std::string model, out;
  std::string max_file_size = "64M";
  std::string train_on = "assistant";
  std::string redact;
  bool no_redact_secrets = false;
  bool no_near_dedup = false;
};

// Files that yielded nothing, with the reason (each also in manifest.json).
nlohmann::json files_without_documents(const data::Manifest& m) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& e : m.sources)
    if (!e.skipped.empty()) a.push_back({{"path", e.path}, {"reason", e.skipped}});
  return a;
}

nlohmann::json summary_json(const data::IngestResult& r, const std::string& out) {
  const auto& m = r.manifest;
  double mb_s = r.seconds > 0 ? r.bytes_processed / 1e6 / r.seconds : 0;
  return {{"dataset", out},
          {"added", r.added},
          {"changed", r.changed},
          {"removed", r.removed},
          {"unchanged", r.unchanged},
          {"bytes_read", r.bytes_processed},
          {"seconds", r.seconds},
          {"mb_per_s", mb_s},
          {"generation", m.generation},
          {"seq_len", m.seq_len},
          {"tokenizer", m.tokenizer["fingerprint"]},
          {"totals", m.totals},
          {"files_without_documents", files_without_documents(m)},
          {"train", {{"sequences", m.train.sequences}, {"tokens", m.train.tokens}, {"target_tokens", m.train.targets}}},
          {"validation",
           {{"sequences", m.validation.sequences},
            {"tokens", m.validation.tokens},
            {"target_tokens", m.validation.targets}}}};
}

void summary_print(const data::IngestResult& r, const std::string& out) {
  const auto& t = r.manifest.totals;
  std::cout << fmt::format("{}: {} added, {} changed, {} removed, {} unchanged ({:.1f} MB read in {:.2f} s)\n", out,
                           r.added, r.changed, r.removed, r.unchanged, r.bytes_processed / 1e6, r.seconds);
  std::cout << fmt::format("  files: {} used, {} skipped, {} with problems ({} problems)\n",
                           t["files_used"].get<uint64_t>(), t["files_skipped"].get<uint64_t>(),
                           t["files_with_issues"].get<uint64_t>(), t["issues"].get<uint64_t>());
  const auto nothing = files_without_documents(r.manifest);
  for (size_t i = 0; i < nothing.size() && i < 10; ++i)
    std::cout << fmt::format("    nothing from {}: {}\n", nothing[i]["path"].get<std::string>(),
                             nothing[i]["reason"].get<std::string>());
  if (nothing.size() > 10)
    std::cout << fmt::format("    ... and {} more (manifest.json lists them)\n", nothing.size() - 10);
  std::cout << fmt::format("  documents: {} from {} records; duplicates removed: {} exact, {} near; {} truncated\n",
                           t["documents"].get<uint64_t>(), t["records"].get<uint64_t>(),
                           t["duplicates_exact"].get<uint64_t>(), t["duplicates_near"].get<uint64_t>(),
                           t["truncated"].get<uint64_t>());
  std::string red;
  for (auto& [k, v] : t["redactions"].items())
    red += fmt::format("{}{} {}", red.empty() ? "" : ", ", v.get<uint64_t>(), k);
  std::cout << "  redactions: " << (red.empty() ? "none" : red) << "\n";
  std::cout << "  found, not redacted: " << data::found_kept_describe(t.value("found_kept", data::RedactCounts{}))
            << "\n";
  std::cout << fmt::format("  train: {} sequences, {} tokens ({} targets); validation: {} sequences, {} tokens\n",
                           r.manifest.train.sequences, r.manifest.train.tokens, r.manifest.train.targets,
                           r.manifest.validation.sequences, r.manifest.validation.tokens);
}

void run_ingest(IngestCliOptions& o, const GlobalOptions& g) {
  globals_apply(g);
  data::IngestOptions& in = o.ingest;
  for (const auto& s : o.sources) in.sources.emplace_back(s);
  in.model_dir = o.model;
  in.out_dir = o.out;
  in.max_file_size = data::size_parse(o.max_file_size, "--max-file-size");
  if (o.train_on != "assistant" && o.train_on != "all")
    throw ConfigError(fmt::format("--train-on: expected assistant|all, got '{}'", o.train_on));
  in.train_on = o.train_on == "all" ? data::TrainOn::kAll : data::TrainOn::kAssistant;
  if (o.no_redact_secrets) in.redact.secrets = false;
  if (!o.redact.empty()) data::redact_parse(o.redact, "--redact", &in.redact);
  in.near_dedup = !o.no_near_dedup;
  in.threads = g.threads;
  auto result = data::ingest_run(in);
  if (g.json) json_print(summary_json(result, o.out));
  else summary_print(result, o.out);
}

}  // namespace

void add_ingest(CLI::App& app, const GlobalOptions& g, Runner& run) {
  auto o = std::make_shared<IngestCliOptions>();
  auto* cmd = app.add_subcommand("ingest", "Turn documents, notes, mail and chat exports into a training dataset");
  cmd->add_option("sources", o->sources, "Files or folders (recursive)")->required();
  model_option_add(cmd, o->model, "Model folder whose tokenizer and chat template to use")->required();
  cmd->add_option("--out", o->out, "Dataset folder (created, or updated in place)")->required();
  cmd->add_option("--include", o->ingest.include, "Only files matching this glob (repeatable)");
  cmd->add_option("--exclude", o->ingest.exclude, "Skip files matching this glob (repeatable)");
  cmd->add_option("--max-file-size", o->max_file_size, "Skip larger files (e.g. 64M, the default)");
  cmd->add_option("--format", o->ingest.format,
                  "auto|txt|md|html|pdf|eml|mbox|jsonl|json|chatgpt|claude|whatsapp|telegram (default auto: by "
                  "extension, exports by content)");
  cmd->add_option("--me", o->ingest.me,
                  "Your name in WhatsApp/Telegram exports: your messages become the assistant turns (repeatable)");
  cmd->add_option("--seq-len", o->ingest.seq_len, "Tokens per sequence (default min(2048, the model's context))");
  cmd->add_option("--train-on", o->train_on, "Chat loss on assistant turns only, or all tokens (default assistant)");
  cmd->add_option("--val-fraction", o->ingest.val_fraction, "Share of documents held out for validation (0.05)");
  cmd->add_option("--near-dup-threshold", o->ingest.near_dup_threshold, "Jaccard similarity for near duplicates (0.8)");
  cmd->add_flag("--no-near-dedup", o->no_near_dedup, "Remove exact duplicates only");
  cmd->add_option("--redact", o->redact, "Also redact: emails,phones,cards,ips (or all, none)");
  cmd->add_flag("--no-redact-secrets", o->no_redact_secrets, "Keep private keys, API tokens and passwords");
  cmd->add_flag("--mail-headers", o->ingest.mail_headers, "Train on From/To/Date/Subject of mail too");
  cmd->add_flag("--strict", o->ingest.strict, "Fail on any bad input instead of skipping it");
  cmd->add_flag("--follow-symlinks", o->ingest.follow_symlinks,
                "Read symlinked files that lead out of their source folder (skipped by default)");
  cmd->add_flag("--force", o->ingest.force, "Write into an --out folder that holds other files (they are kept)");
  cmd->add_option("--shard-tokens", o->ingest.shard_tokens, "Tokens per shard file (default 16777216)");
  cmd->callback([o, &g, &run] { run = [o, &g] { run_ingest(*o, g); }; });
}

}  // namespace hearth::app
