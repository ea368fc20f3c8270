#include "hub/http.h"

#include <algorithm>
#include <cctype>
#include <exception>

#include <httplib.h>
#include <fmt/format.h>

#include "core/error.h"
#include "core/signals.h"

namespace hearth::hub {

namespace {

constexpr size_t kBodyKeep = 64 * 1024;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// One GET, no redirects followed.
HttpReply get_once(const Url& u, const HttpHeaders& headers, const HttpOptions& o, const BodySink& sink) {
  httplib::Client cli(u.origin());
  if (!cli.is_valid())
    throw ConfigError(
        fmt::format("{}: this hearth cannot open {} URLs (cpp-httplib without OpenSSL?)", u.str(), u.scheme));
  cli.set_connection_timeout(o.connect_timeout_s);
  cli.set_read_timeout(o.read_timeout_s);
  cli.set_follow_location(false);
  httplib::Headers h(headers.begin(), headers.end());
  if (!o.bearer_token.empty() && u.origin() == o.token_origin) h.emplace("Authorization", "Bearer " + o.bearer_token);
  HttpReply reply;
  reply.url = u.str();
  bool to_sink = false, interrupted = false;
  std::exception_ptr sink_error;  // the sink may throw; httplib's callbacks must not
  auto on_response = [&](const httplib::Response& r) {
    reply.status = r.status;
    reply.headers = HttpHeaders(r.headers.begin(), r.headers.end());
    to_sink = sink && (r.status == 200 || r.status == 206);
    return true;
  };
  auto on_body = [&](const char* data, size_t size) {
    if (interrupt_requested()) {
      interrupted = true;
      return false;
    }
    if (!to_sink) {
      if (reply.body.size() < kBodyKeep) reply.body.append(data, std::min(size, kBodyKeep - reply.body.size()));
      return true;
    }
    try {
      return sink(reply, data, size);
    } catch (...) {
      sink_error = std::current_exception();
      return false;
    }
  };
  auto res = cli.Get(u.target, h, on_response, on_body);
  if (interrupted) throw InterruptedError(fmt::format("GET {}: interrupted", u.str()));
  if (sink_error) std::rethrow_exception(sink_error);
  if (!res)
    throw IoError(fmt::format("GET {}: {} error (refused, closed early or timed out); check the network, or "
                              "HF_ENDPOINT when using a mirror",
                              u.str(), httplib::to_string(res.error())));
  return reply;
}

}  // namespace

namespace {
// The host as a URL writes it: an IPv6 address in brackets.
std::string host_part(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}
}  // namespace

std::string Url::origin() const { return fmt::format("{}://{}:{}", scheme, host_part(host), port); }

std::string Url::str() const {
  const bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  return default_port ? fmt::format("{}://{}{}", scheme, host_part(host), target)
                      : fmt::format("{}://{}:{}{}", scheme, host_part(host), port, target);
}

Url url_parse(const std::string& text) {
  Url u;
  auto sep = text.find("://");
  if (sep != std::string::npos) u.scheme = lower(text.substr(0, sep));
  if (u.scheme != "http" && u.scheme != "https")
    throw ConfigError(fmt::format("URL '{}': expected http:// or https://", text));
  const size_t start = sep + 3, slash = text.find_first_of("/?", start);
  std::string authority = text.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
  u.target = slash == std::string::npos ? "/" : text.substr(slash);
  if (u.target[0] == '?') u.target = "/" + u.target;
  if (authority.find('@') != std::string::npos)
    throw ConfigError(fmt::format("URL '{}': credentials in URLs are not supported; use HF_TOKEN", text));
  u.port = u.scheme == "https" ? 443 : 80;
  auto colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
    const std::string port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit))
      throw ConfigError(fmt::format("URL '{}': bad port '{}'", text, port));
    u.port = std::stoi(port);
    authority.resize(colon);
  }
  if (authority.size() > 1 && authority.front() == '[' && authority.back() == ']')
    authority = authority.substr(1, authority.size() - 2);
  if (authority.empty()) throw ConfigError(fmt::format("URL '{}': no host", text));
  u.host = authority;
  return u;
}

std::string url_encode(const std::string& text, bool keep_slash) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/'))
      out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

std::string HttpReply::header(const std::string& name) const {
  const std::string want = lower(name);
  for (const auto& [k, v] : headers)
    if (lower(k) == want) return v;
  return "";
}

HttpReply http_get(const std::string& url, const HttpHeaders& headers, const HttpOptions& options,
                   const BodySink& sink) {
  Url u = url_parse(url);
  for (int hop = 0;; ++hop) {
    HttpReply reply = get_once(u, headers, options, sink);
    if (!is_redirect(reply.status)) return reply;
    const std::string location = reply.header("Location");
    if (location.empty()) return reply;
    if (hop >= options.max_redirects)
      throw IoError(fmt::format("GET {}: more than {} redirects", url, options.max_redirects));
    if (location[0] == '/') {
      u.target = location;
    } else {
      try {
        u = url_parse(location);
      } catch (const ConfigError& e) {
        throw ConfigError(fmt::format("GET {}: redirected to an unusable location: {}", url, e.what()));
      }
    }
  }
}

}  // namespace hearth::hub
