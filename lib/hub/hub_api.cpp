#include "hub/hub_api.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace hearth::hub {

namespace {

bool hex_of_length(const std::string& s, size_t n) {
  return s.size() == n &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// A repo path the cache can hold: relative, no empty, "." or ".." parts, no backslashes or control characters.
bool repo_path_safe(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.back() == '/') return false;
  for (char c : p)
    if (static_cast<unsigned char>(c) < ' ' || c == '\\') return false;
  for (const auto& part : std::filesystem::path(p))
    if (part.empty() || part == "." || part == "..") return false;
  return true;
}

HubFile file_parse(const nlohmann::json& s, const std::string& where) {
  HubFile f;
  auto fail = [&](const std::string& what) {
    throw FormatError(fmt::format("{}: sibling {}: {}", where, s.dump().substr(0, 200), what));
  };
  if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) fail("no rfilename");
  f.path = s["rfilename"].get<std::string>();
  if (!repo_path_safe(f.path)) fail("unsafe file path");
  if (!s.contains("size") || !s["size"].is_number_unsigned()) fail("no size (expected with ?blobs=true)");
  f.size = s["size"].get<uint64_t>();
  f.blob_id = s.value("blobId", "");
  if (!hex_of_length(f.blob_id, 40)) fail("blobId is not a git object id");
  if (s.contains("lfs") && s["lfs"].is_object()) {
    const auto& lfs = s["lfs"];
    f.lfs_sha256 = lfs.value("sha256", "");
    if (!hex_of_length(f.lfs_sha256, 64)) fail("lfs.sha256 is not a sha256");
    if (lfs.contains("size") && lfs["size"].is_number_unsigned()) f.size = lfs["size"].get<uint64_t>();
  }
  return f;
}

}  // namespace

HubConfig hub_config_from_env() {
  HubConfig c;
  if (const char* e = std::getenv("HF_ENDPOINT"); e && *e) c.endpoint = e;
  while (!c.endpoint.empty() && c.endpoint.back() == '/') c.endpoint.pop_back();
  try {
    url_parse(c.endpoint);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("HF_ENDPOINT: {}", e.what()));
  }
  if (const char* t = std::getenv("HF_TOKEN"); t && *t) c.token = t;
  return c;
}

HttpOptions hub_http_options(const HubConfig& c) {
  HttpOptions o;
  o.bearer_token = c.token;
  o.token_origin = url_parse(c.endpoint).origin();
  return o;
}

HubRevision hub_revision_get(const HubConfig& c, const std::string& repo, const std::string& revision) {
  const std::string url = fmt::format("{}/api/models/{}/revision/{}?blobs=true", c.endpoint, url_encode(repo, true),
                                      url_encode(revision, false));
  HttpReply r = http_get(url, {{"Accept", "application/json"}}, hub_http_options(c));
  if (r.status != 200) hub_error_throw(r, c, repo, fmt::format("{} revision {}", repo, revision));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(fmt::format("{}: the reply is not JSON ({})", url, e.what()));
  }
  HubRevision rev;
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !hex_of_length(j["sha"].get<std::string>(), 40))
    throw FormatError(fmt::format("{}: expected a JSON object with \"sha\" (a commit hash)", url));
  rev.commit = j["sha"].get<std::string>();
  if (!j.contains("siblings") || !j["siblings"].is_array())
    throw FormatError(fmt::format("{}: expected \"siblings\" (the file list)", url));
  try {
    for (const auto& s : j["siblings"]) rev.files.push_back(file_parse(s, url));
  } catch (const nlohmann::json::exception& e) {  // a key of the wrong type
    throw FormatError(fmt::format("{}: malformed \"siblings\" ({})", url, e.what()));
  }
  return rev;
}

std::string hub_file_url(const HubConfig& c, const std::string& repo, const std::string& commit,
                         const std::string& file) {
  return fmt::format("{}/{}/resolve/{}/{}", c.endpoint, url_encode(repo, true), commit, url_encode(file, true));
}

void hub_error_throw(const HttpReply& r, const HubConfig& c, const std::string& repo, const std::string& what) {
  const std::string code = r.header("X-Error-Code"), hub_says = r.header("X-Error-Message");
  const std::string detail = fmt::format("HTTP {}{}", r.status, hub_says.empty() ? "" : ": " + hub_says);
  const std::string page = fmt::format("{}/{}", c.endpoint, repo);
  if (code == "GatedRepo" || (r.status == 403 && hub_says.find("gated") != std::string::npos))
    throw ConfigError(
        fmt::format("{}: {} is a gated model ({}); accept its conditions at {} while logged in, then "
                    "set HF_TOKEN to an access token of that account",
                    what, repo, detail, page));
  if (r.status == 401 && c.token.empty())
    throw ConfigError(
        fmt::format("{}: not found, or private or gated ({}); check the name, and for a private or "
                    "gated model set HF_TOKEN to an access token (https://huggingface.co/settings/tokens)",
                    what, detail));
  if (r.status == 401)
    throw ConfigError(
        fmt::format("{}: not found, or HF_TOKEN may not read it ({}); check the name and the token", what, detail));
  if (r.status == 403)
    throw ConfigError(
        fmt::format("{}: access refused ({}); HF_TOKEN needs read access to {} (a fine-grained token "
                    "must list it)",
                    what, detail, repo));
  if (r.status == 404) {
    if (code == "RevisionNotFound")
      throw IoError(
          fmt::format("{}: no such revision ({}); check the branch, tag or commit at {}", what, detail, page));
    if (code == "EntryNotFound")
      throw IoError(
          fmt::format("{}: no such file in the repo ({}); see the files at {}/tree/main", what, detail, page));
    throw IoError(fmt::format("{}: not found on {} ({}); check the name", what, c.endpoint, detail));
  }
  if (r.status == 429 || r.status >= 500)
    throw IoError(fmt::format("{}: the Hub is busy or failing ({}); try again later", what, detail));
  throw IoError(fmt::format("{}: unexpected reply from {} ({})", what, r.url, detail));
}

}  // namespace hearth::hub
