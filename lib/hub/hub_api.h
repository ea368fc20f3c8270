// The Hugging Face Hub's HTTP API, the part hearth uses: the file list of a repo revision
// (GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true), file URLs
// ({endpoint}/{repo}/resolve/{commit}/{file}) and the Hub's error replies turned into messages that say what to
// do. Documented at https://huggingface.co/docs/hub/api. Not an upload or search client.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hub/http.h"

namespace hearth::hub {

// Where the Hub is and who asks.
struct HubConfig {
  std::string endpoint = "https://huggingface.co";  // no trailing slash
  std::string token;                                // sent as a bearer token to the endpoint only
};

// $HF_ENDPOINT (default https://huggingface.co) and $HF_TOKEN. Throws ConfigError for an endpoint that is not an
// http(s) URL.
HubConfig hub_config_from_env();
// The HTTP options every Hub request uses (the token bound to the endpoint's origin).
HttpOptions hub_http_options(const HubConfig& c);

// One file of a revision, as the API lists it.
struct HubFile {
  std::string path;        // "model.safetensors", "onnx/model.onnx"
  uint64_t size = 0;       // bytes of the file itself (for LFS files, not of the pointer)
  std::string blob_id;     // the git blob id (sha1 of "blob <size>\0" + bytes for non-LFS files)
  std::string lfs_sha256;  // LFS files: the sha256 of the bytes; "" otherwise
  // The name the cache stores it under (the ETag the Hub gives it): the sha256 for LFS files, else the git blob id.
  const std::string& etag() const { return lfs_sha256.empty() ? blob_id : lfs_sha256; }
};

struct HubRevision {
  std::string commit;  // 40 hex digits
  std::vector<HubFile> files;
};

// The commit a revision (branch, tag or commit) points at and its files with sizes and hashes. Throws as
// hub_error_throw() for an HTTP error, IoError when the Hub cannot be reached, FormatError for a reply that is
// not the documented JSON or names an unsafe path ("../x", "/etc/x").
HubRevision hub_revision_get(const HubConfig& c, const std::string& repo, const std::string& revision);
// {endpoint}/{repo}/resolve/{commit}/{file}, percent-encoded.
std::string hub_file_url(const HubConfig& c, const std::string& repo, const std::string& commit,
                         const std::string& file);

// Throws what a failed reply means, naming `what` (the repo, revision or file) and the fix: ConfigError (exit 2)
// for 401/403 (no, a refused or an insufficient token; a gated repo whose conditions are not accepted), IoError
// (exit 3) for 404 (no such repo, revision or file) and everything else (429, 5xx: try again later).
[[noreturn]] void hub_error_throw(const HttpReply& reply, const HubConfig& c, const std::string& repo,
                                  const std::string& what);

}  // namespace hearth::hub
