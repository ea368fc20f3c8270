// A stand-in for the Hugging Face Hub, for end-to-end tests of `hearth pull`: cpp-httplib servers on 127.0.0.1
// (random ports) serving the documented routes from fixture files —
//   GET /api/models/ORG/NAME/revision/REV[?blobs=true]  {"sha", "siblings": [{"rfilename", "size", "blobId", "lfs"}]}
//   GET /ORG/NAME/resolve/COMMIT/FILE                   the bytes; LFS files by a 302 to a second server on another
//                                                       port (the "CDN"), as the Hub redirects to its CDN
// — with knobs to break it: cut a transfer, corrupt a file, demand a token, gate a repo. Every request is recorded.
// The expected hashes are computed here independently of hearth's downloader (core/sha256 for sha256, OpenSSL's
// one-shot SHA1 for git blob ids).
#pragma once

#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/sha256.h"

namespace hearth::test {

struct FakeFile {
  std::string path;
  std::string bytes;
  bool lfs = false;
};

// One commit of a repo, and the refs that point at it.
struct FakeCommit {
  std::string repo;    // "org/name"
  std::string commit;  // 40 hex digits
  std::vector<std::string> refs;
  std::vector<FakeFile> files;
};

struct SeenRequest {
  std::string server;  // "hub" or "cdn"
  std::string path;    // decoded, without the query
  std::string query;   // "blobs=true"
  std::string range, authorization;
};

// git's blob id: sha1("blob <size>\0" + bytes), in hex.
inline std::string git_blob_id(const std::string& bytes) {
  std::string data = fmt::format("blob {}", bytes.size());
  data.push_back('\0');
  data += bytes;
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string hex;
  for (unsigned char c : md) hex += fmt::format("{:02x}", c);
  return hex;
}

// The cache's name for a file's blob: sha256 for LFS files, git blob id otherwise.
inline std::string etag_of(const FakeFile& f) { return f.lfs ? sha256_hex(f.bytes) : git_blob_id(f.bytes); }

class FakeHub {
 public:
  explicit FakeHub(std::vector<FakeCommit> commits) : commits_(std::move(commits)) {
    hub_.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))", [this](const auto& req, auto& res) { api(req, res); });
    hub_.Get(R"(/([^/]+/[^/]+)/resolve/([0-9a-f]{40})/(.+))",
             [this](const auto& req, auto& res) { resolve(req, res); });
    cdn_.Get(R"(/cdn/([0-9a-f]{64}))", [this](const auto& req, auto& res) { cdn(req, res); });
    hub_port_ = hub_.bind_to_any_port("127.0.0.1");
    cdn_port_ = cdn_.bind_to_any_port("127.0.0.1");
    hub_thread_ = std::thread([this] { hub_.listen_after_bind(); });
    cdn_thread_ = std::thread([this] { cdn_.listen_after_bind(); });
    while (!hub_.is_running() || !cdn_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeHub() {
    hub_.stop();
    cdn_.stop();
    hub_thread_.join();
    cdn_thread_.join();
  }
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  std::string endpoint() const { return fmt::format("http://127.0.0.1:{}", hub_port_); }

  // Knobs; set them before a run.
  std::string cut_file;  // the first `cuts` downloads of this file close the connection ...
  size_t cut_at = 0;     // ... after this many bytes
  std::atomic<int> cuts{0};
  std::string corrupt_file;  // served with one byte changed; the listing keeps the true size and hash
  std::string token;         // when set, a request without "Bearer <token>" is answered 401
  std::string gated_repo;    // metadata public, files 401 (no token) or 403 (a token): X-Error-Code GatedRepo

  std::vector<SeenRequest> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  void seen_clear() {
    std::lock_guard<std::mutex> lock(mu_);
    seen_.clear();
  }

 private:
  void record(const char* server, const httplib::Request& req) {
    std::string query;
    for (const auto& [k, v] : req.params) query += (query.empty() ? "" : "&") + k + "=" + v;
    std::lock_guard<std::mutex> lock(mu_);
    seen_.push_back({server, req.path, query, req.get_header_value("Range"), req.get_header_value("Authorization")});
  }
  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    res.status = status;
    res.set_header("X-Error-Code", code);
    res.set_header("X-Error-Message", message);
    res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
  }
  // False (and a 401 sent) when a token is required and not given.
  bool authorized(const httplib::Request& req, httplib::Response& res) {
    if (token.empty() || req.get_header_value("Authorization") == "Bearer " + token) return true;
    error(res, 401, "RepoNotFound", "Repository Not Found");
    return false;
  }
  const FakeCommit* find(const std::string& repo, const std::string& rev) const {
    for (const auto& c : commits_)
      if (c.repo == repo && (c.commit == rev || std::find(c.refs.begin(), c.refs.end(), rev) != c.refs.end()))
        return &c;
    return nullptr;
  }
  bool repo_known(const std::string& repo) const {
    for (const auto& c : commits_)
      if (c.repo == repo) return true;
    return false;
  }

  void api(const httplib::Request& req, httplib::Response& res) {
    record("hub", req);
    if (!authorized(req, res)) return;
    const std::string repo = req.matches[1], rev = req.matches[2];
    const FakeCommit* c = find(repo, rev);
    if (!c) {
      repo_known(repo) ? error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev)
                       : error(res, 404, "RepoNotFound", "Repository not found");
      return;
    }
    nlohmann::json siblings = nlohmann::json::array();
    const bool blobs = req.get_param_value("blobs") == "true";
    for (const auto& f : c->files) {
      nlohmann::json s = {{"rfilename", f.path}};
      if (blobs) {
        s["size"] = f.bytes.size();
        s["blobId"] = git_blob_id(f.lfs ? "version https://git-lfs.github.com/spec/v1 (pointer)" : f.bytes);
        if (f.lfs) s["lfs"] = {{"sha256", sha256_hex(f.bytes)}, {"size", f.bytes.size()}, {"pointerSize", 134}};
      }
      siblings.push_back(s);
    }
    res.set_content(nlohmann::json{{"id", repo}, {"sha", c->commit}, {"siblings", siblings}}.dump(),
                    "application/json");
  }

  void resolve(const httplib::Request& req, httplib::Response& res) {
    record("hub", req);
    if (!authorized(req, res)) return;
    const std::string repo = req.matches[1], commit = req.matches[2], path = req.matches[3];
    if (repo == gated_repo) {
      const bool has_token = !req.get_header_value("Authorization").empty();
      error(res, has_token ? 403 : 401, "GatedRepo", "Access to model " + repo + " is restricted.");
      return;
    }
    const FakeCommit* c = find(repo, commit);
    const FakeFile* f = nullptr;
    for (size_t i = 0; c && i < c->files.size(); ++i)
      if (c->files[i].path == path) f = &c->files[i];
    if (!f) return error(res, 404, "EntryNotFound", path + " does not exist");
    res.set_header("X-Repo-Commit", commit);
    if (f->lfs) {  // the Hub sends LFS files from its CDN: a 302 to a signed URL on another host
      res.status = 302;
      res.set_header("X-Linked-Etag", "\"" + sha256_hex(f->bytes) + "\"");
      res.set_header("Location",
                     fmt::format("http://127.0.0.1:{}/cdn/{}?X-Amz-Signature=abc", cdn_port_, sha256_hex(f->bytes)));
      return;
    }
    res.set_header("ETag", "\"" + git_blob_id(f->bytes) + "\"");
    send(*f, res);
  }

  void cdn(const httplib::Request& req, httplib::Response& res) {
    record("cdn", req);
    for (const auto& c : commits_)
      for (const auto& f : c.files)
        if (f.lfs && sha256_hex(f.bytes) == req.matches[1].str()) return send(f, res);
    res.status = 404;
  }

  // The bytes, with Range served by httplib itself (the status is left for it to set: 200, or 206 for a range).
  void send(const FakeFile& f, httplib::Response& res) {
    auto bytes = std::make_shared<std::string>(f.bytes);
    if (f.path == corrupt_file) (*bytes)[bytes->size() / 2] ^= 0x5a;
    const bool cut = f.path == cut_file && cuts.fetch_sub(1) > 0;
    const size_t cut_at_ = cut_at;
    res.set_content_provider(bytes->size(), "application/octet-stream",
                             [bytes, cut, cut_at_](size_t offset, size_t length, httplib::DataSink& sink) {
                               if (cut) {  // part of it, then the connection closes
                                 if (offset < cut_at_) sink.write(bytes->data() + offset, cut_at_ - offset);
                                 return false;
                               }
                               sink.write(bytes->data() + offset, length);
                               return true;
                             });
  }

  std::vector<FakeCommit> commits_;
  httplib::Server hub_, cdn_;
  int hub_port_ = 0, cdn_port_ = 0;
  std::thread hub_thread_, cdn_thread_;
  std::mutex mu_;
  std::vector<SeenRequest> seen_;
};

}  // namespace hearth::test
