// HTTP GET for the Hub client, over cpp-httplib (Debian's build, with OpenSSL for https): streamed bodies,
// redirects followed by hand so that the Authorization header never leaves the origin it was meant for (the Hub
// redirects file downloads to a CDN whose signed URLs refuse a second credential), timeouts, interruption by
// SIGINT/SIGTERM. Not a general HTTP client: GET only, no cookies, no proxies.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace hearth::hub {

// An absolute http(s) URL split into its origin and the rest.
struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;
  int port = 0;
  std::string target;          // path and query, starting with '/'
  std::string origin() const;  // "https://host:443", the port always written (for comparing origins)
  std::string str() const;     // the URL as people write it (no default port)
};

// Parses "http(s)://host[:port][/path?query]". Throws ConfigError naming the URL for anything else.
Url url_parse(const std::string& text);
// Percent-encodes everything but A-Z a-z 0-9 - . _ ~ (and '/' when keep_slash).
std::string url_encode(const std::string& text, bool keep_slash);

using HttpHeaders = std::multimap<std::string, std::string>;

// The final response after redirects. `body` holds the body of a response the sink did not take (a JSON
// reply, an error page), at most 64 KiB of it.
struct HttpReply {
  int status = 0;
  HttpHeaders headers;  // names as sent; use header()
  std::string body;
  std::string url;                                    // the URL that answered (after redirects)
  std::string header(const std::string& name) const;  // case-insensitive; "" when absent
};

// Receives the body of a 200 or 206 reply, piece by piece. What it throws stops the transfer and leaves
// http_get(); returning false stops it too (http_get then throws IoError, as for a broken connection).
// `head` is the reply being received (status and headers; its body stays empty).
using BodySink = std::function<bool(const HttpReply& head, const char* data, size_t size)>;

struct HttpOptions {
  std::string bearer_token;  // sent as "Authorization: Bearer ..." to `token_origin` only
  std::string token_origin;  // Url::origin() of the endpoint the token belongs to
  int connect_timeout_s = 15;
  int read_timeout_s = 60;
  int max_redirects = 10;
};

// GETs `url` with `headers` (plus Authorization where allowed), following 301/302/303/307/308 redirects (a
// Location may be relative), streaming a 200/206 body into `sink` (or into HttpReply::body when sink is empty).
// Returns any final status; the caller decides what it means. Throws IoError naming the URL when the connection
// fails or breaks before the body is complete (the sink has then seen part of it), InterruptedError on
// SIGINT/SIGTERM, ConfigError for a redirect to something that is not an http(s) URL.
HttpReply http_get(const std::string& url, const HttpHeaders& headers, const HttpOptions& options,
                   const BodySink& sink = nullptr);

}  // namespace hearth::hub
