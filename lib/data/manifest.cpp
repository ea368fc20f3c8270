#include "data/manifest.h"

#include <fmt/format.h>

#include "core/error.h"
#include "io/json_file.h"

namespace hearth::data {
using nlohmann::json;

namespace {

json issues_json(const std::vector<Issue>& issues) {
  json a = json::array();
  for (const auto& i : issues) {
    json e = {{"reason", i.reason}};
    if (i.line > 0) e["line"] = i.line;
    a.push_back(e);
  }
  return a;
}

json split_json(const SplitInfo& s) {
  json shards = json::array();
  for (const auto& sh : s.shards)
    shards.push_back({{"file", sh.file}, {"sequences", sh.sequences}, {"bytes", sh.bytes}, {"sha256", sh.sha256}});
  return {{"sequences", s.sequences},
          {"tokens", s.tokens},
          {"target_tokens", s.targets},
          {"documents", s.documents},
          {"shards", shards}};
}

// A required field of the given JSON type; FormatError naming origin and field otherwise.
const json& need(const json& j, const char* key, json::value_t type, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) throw FormatError(fmt::format("{}: field '{}' is missing", where, key));
  bool ok = it->type() == type || (type == json::value_t::number_unsigned && it->is_number_unsigned()) ||
            (type == json::value_t::number_integer && it->is_number_integer()) ||
            (type == json::value_t::number_float && it->is_number());
  if (!ok) {
    json probe(type);
    throw FormatError(
        fmt::format("{}: field '{}': expected {}, got {}", where, key, probe.type_name(), it->type_name()));
  }
  return *it;
}

using V = json::value_t;

SplitInfo split_from_json(const json& j, const std::string& where) {
  SplitInfo s;
  s.sequences = need(j, "sequences", V::number_unsigned, where).get<uint64_t>();
  s.tokens = need(j, "tokens", V::number_unsigned, where).get<uint64_t>();
  s.targets = need(j, "target_tokens", V::number_unsigned, where).get<uint64_t>();
  s.documents = need(j, "documents", V::number_unsigned, where).get<uint64_t>();
  const json& shards = need(j, "shards", V::array, where);
  uint64_t total = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string w = fmt::format("{}.shards[{}]", where, i);
    ShardInfo sh;
    sh.file = need(shards[i], "file", V::string, w).get<std::string>();
    if (sh.file.find('/') != std::string::npos || sh.file.empty() || sh.file[0] == '.')
      throw FormatError(
          fmt::format("{}: field 'file': expected a file name in the dataset folder, got '{}'", w, sh.file));
    sh.sequences = need(shards[i], "sequences", V::number_unsigned, w).get<uint64_t>();
    sh.bytes = need(shards[i], "bytes", V::number_unsigned, w).get<uint64_t>();
    sh.sha256 = need(shards[i], "sha256", V::string, w).get<std::string>();
    total += sh.sequences;
    s.shards.push_back(sh);
  }
  if (total != s.sequences)
    throw FormatError(
        fmt::format("{}: field 'sequences': expected the shards' sum {}, got {}", where, total, s.sequences));
  return s;
}

SourceEntry source_from_json(const json& j, const std::string& w) {
  SourceEntry e;
  e.path = need(j, "path", V::string, w).get<std::string>();
  e.size = need(j, "size", V::number_unsigned, w).get<uint64_t>();
  e.mtime_ns = need(j, "mtime_ns", V::number_integer, w).get<int64_t>();
  e.sha256 = j.value("sha256", "");
  e.format = j.value("format", "");
  e.records = j.value("records", uint64_t(0));
  e.documents = j.value("documents", uint64_t(0));
  e.tokens = j.value("tokens", uint64_t(0));
  e.duplicates_exact = j.value("duplicates_exact", uint64_t(0));
  e.duplicates_near = j.value("duplicates_near", uint64_t(0));
  if (j.contains("redactions") && j["redactions"].is_object())
    for (auto& [k, v] : j["redactions"].items()) e.redactions[k] = v.get<uint64_t>();
  if (j.contains("found_kept") && j["found_kept"].is_object())
    for (auto& [k, v] : j["found_kept"].items())
      if (v.is_number_unsigned()) e.found_kept[k] = v.get<uint64_t>();
  if (j.contains("issues") && j["issues"].is_array())
    for (const auto& i : j["issues"]) e.issues.push_back({i.value("line", uint64_t(0)), i.value("reason", "")});
  if (j.contains("omitted") && j["omitted"].is_object())
    for (auto& [k, v] : j["omitted"].items())
      if (v.is_number_unsigned()) e.omitted[k] = v.get<uint64_t>();
  if (j.contains("provenance") && j["provenance"].is_array())
    for (const auto& p : j["provenance"]) {
      if (!p.is_object()) continue;
      RecordOrigin o;
      o.line = p.value("line", uint64_t(0));
      o.provenance.position = p.value("position", "");
      o.provenance.title = p.value("title", "");
      o.provenance.created = p.value("created", "");
      o.provenance.updated = p.value("updated", "");
      e.provenance.push_back(std::move(o));
    }
  e.skipped = j.value("skipped", "");
  e.cache = j.value("cache", "");
  return e;
}

}  // namespace

json manifest_to_json(const Manifest& m) {
  json sources = json::array();
  for (const auto& e : m.sources) {
    json s = {{"path", e.path},
              {"size", e.size},
              {"mtime_ns", e.mtime_ns},
              {"sha256", e.sha256},
              {"format", e.format},
              {"records", e.records},
              {"documents", e.documents},
              {"tokens", e.tokens},
              {"duplicates_exact", e.duplicates_exact},
              {"duplicates_near", e.duplicates_near},
              {"redactions", json(e.redactions)},
              {"found_kept", json(e.found_kept)},
              {"issues", issues_json(e.issues)}};
    if (!e.omitted.empty()) s["omitted"] = json(e.omitted);
    if (!e.provenance.empty()) {
      json p = json::array();
      for (const auto& o : e.provenance) {
        json r = json::object();
        if (o.line > 0) r["line"] = o.line;
        if (!o.provenance.position.empty()) r["position"] = o.provenance.position;
        if (!o.provenance.title.empty()) r["title"] = o.provenance.title;
        if (!o.provenance.created.empty()) r["created"] = o.provenance.created;
        if (!o.provenance.updated.empty()) r["updated"] = o.provenance.updated;
        p.push_back(std::move(r));
      }
      s["provenance"] = std::move(p);
    }
    if (!e.skipped.empty()) s["skipped"] = e.skipped;
    if (!e.cache.empty()) s["cache"] = e.cache;
    sources.push_back(s);
  }
  return {{"format", kManifestFormat},
          {"schema_version", kManifestSchemaVersion},
          {"generation", m.generation},
          {"seq_len", m.seq_len},
          {"processing_key", m.processing_key},
          {"tokenizer", m.tokenizer},
          {"options", m.options},
          {"totals", m.totals},
          {"splits", {{"train", split_json(m.train)}, {"validation", split_json(m.validation)}}},
          {"last_run", m.last_run},
          {"sources", sources}};
}

Manifest manifest_from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) throw FormatError(fmt::format("{}: expected a JSON object, got {}", origin, j.type_name()));
  std::string fmt_name = need(j, "format", V::string, origin).get<std::string>();
  if (fmt_name != kManifestFormat)
    throw FormatError(fmt::format("{}: field 'format': expected '{}', got '{}'", origin, kManifestFormat, fmt_name));
  auto version = need(j, "schema_version", V::number_unsigned, origin).get<int64_t>();
  if (version != kManifestSchemaVersion)
    throw FormatError(fmt::format("{}: field 'schema_version': expected {} (this hearth's version), got {}", origin,
                                  kManifestSchemaVersion, version));
  Manifest m;
  m.generation = need(j, "generation", V::number_unsigned, origin).get<uint64_t>();
  m.seq_len = need(j, "seq_len", V::number_unsigned, origin).get<int64_t>();
  if (m.seq_len <= 0) throw FormatError(fmt::format("{}: field 'seq_len': expected > 0, got {}", origin, m.seq_len));
  m.processing_key = j.value("processing_key", "");
  m.tokenizer = need(j, "tokenizer", V::object, origin);
  need(m.tokenizer, "fingerprint", V::string, origin + ": tokenizer");
  m.options = j.value("options", json::object());
  m.totals = j.value("totals", json::object());
  m.last_run = j.value("last_run", json::object());
  const json& splits = need(j, "splits", V::object, origin);
  m.train = split_from_json(need(splits, "train", V::object, origin + ": splits"), origin + ": splits.train");
  m.validation = split_from_json(need(splits, "validation", V::object, origin + ": splits"),
                                 origin + ": splits.validation");
  const json& sources = need(j, "sources", V::array, origin);
  for (size_t i = 0; i < sources.size(); ++i)
    m.sources.push_back(source_from_json(sources[i], fmt::format("{}: sources[{}]", origin, i)));
  return m;
}

Manifest manifest_read(const std::filesystem::path& dir) {
  auto path = dir / "manifest.json";
  if (!std::filesystem::exists(path))
    throw IoError(
        fmt::format("{}: no manifest.json; expected a dataset folder written by hearth ingest", dir.string()));
  return manifest_from_json(io::json_read(path), path.string());
}

}  // namespace hearth::data
