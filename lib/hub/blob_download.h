// One file from the Hub into a blob of the cache (io/hf_cache.h): streamed into BLOB.incomplete, resumed with an
// HTTP Range request after a broken connection (within one run, and by the next run), checked against the size
// and hash the Hub lists, then renamed into place. A blob that exists is complete and checked; a mismatch leaves
// nothing behind. The caller holds the blob's lock (hub/pull.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "hub/hub_api.h"

namespace hearth::hub {

struct BlobJob {
  std::string repo;            // for messages
  std::string url;             // hub_file_url(...)
  HubFile file;                // size and hash to check
  std::filesystem::path blob;  // the final path: CACHE/models--ORG--NAME/blobs/ETAG
};

struct BlobResult {
  uint64_t received = 0;      // body bytes this run fetched
  uint64_t resumed_from = 0;  // bytes a partial file already held when the run started
  int attempts = 0;           // GET requests made
};

// Called with the bytes of the file present so far (resumed bytes included).
using BlobProgress = std::function<void(uint64_t done)>;

// Downloads the file, retrying a broken transfer up to `retries` times (waiting 0.5 s, 1 s, 2 s, ... up to 10 s),
// each retry asking for the missing bytes only (Range: bytes=N-; a server that answers 200 instead is read from
// the start). Throws:
//   IoError      the Hub unreachable or the transfer broken after the retries (the partial file stays for the next
//                run), 404 and other HTTP errors (hub_error_throw), an unwritable cache folder
//   ConfigError  401/403 (hub_error_throw)
//   FormatError  the bytes do not match the listed size or hash (the partial file is deleted)
//   ResourceError  the disk is full (the partial file stays)
//   InterruptedError  SIGINT/SIGTERM (the partial file stays)
BlobResult blob_download(const BlobJob& job, const HubConfig& c, int retries, const BlobProgress& progress);

// The hash a file of the Hub is checked with, in hex: sha256 of the bytes for LFS files, else the git blob id.
// Throws IoError naming the path.
std::string blob_hash_file(const std::filesystem::path& path, const HubFile& file);

}  // namespace hearth::hub
