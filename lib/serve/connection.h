// hearth serve's connections: who may open one, how long a request may take to arrive, how long a write may
// wait, and whether a request's client is still there.
//
// cpp-httplib 0.11 serves each connection on a pool thread with a per-read timeout only: a client that sends
// one header line per timeout holds its thread for as long as it likes (slowloris), and connections beyond the
// pool wait unseen in an unbounded queue. hearth's Listener serves each accepted connection itself, through
// httplib's request processing, and
//  - admits it only while fewer than `max_total` connections are open and fewer than `max_per_client` from its
//    address; otherwise it answers 503 (OpenAI error body, code "too_many_connections") and closes;
//  - waits up to `idle_timeout_s` for the first byte of each request (keep-alive), then gives the whole request
//    — request line, headers and body — `request_timeout_s` seconds from that byte: a total deadline, however
//    steadily the bytes trickle in. A request that misses it gets its connection closed;
//  - never blocks more than `write_timeout_s` on one write (a client that stops reading is dropped).
// The pool may grow to one thread per admissible connection plus a few for refusals (threads start as connections
// need them and retire when idle), so an admitted connection never waits for a thread and a refused one is
// answered at once.
// The thread serving a connection knows its socket: connection_fd_current() (for peer_closed()).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <httplib.h>

namespace hearth::serve {

struct ConnectionLimits {
  int max_total = 1024;
  int max_per_client = 256;
  int request_timeout_s = 10;
  int idle_timeout_s = 5;
  int write_timeout_s = 10;
};

// What the Listener reports (to the server's metrics and log). Called from connection threads; must be
// thread-safe. Empty functions are allowed.
struct ConnectionEvents {
  std::function<void(int delta)> opened;                    // +1: a connection was admitted; -1: it closed
  std::function<void(const std::string& reason)> refused;   // "total" or "per_client"
  std::function<void(const std::string& client)> timed_out;  // a request missed its deadline
};

// Open connections in all and per client address. Thread-safe.
class ConnectionGate {
 public:
  enum class Verdict { kAdmitted, kTotal, kPerClient };
  ConnectionGate(int max_total, int max_per_client) : max_total_(max_total), max_per_client_(max_per_client) {}
  Verdict admit(const std::string& client);
  void release(const std::string& client);
  int open() const;

 private:
  mutable std::mutex mu_;
  int max_total_, max_per_client_, open_ = 0;
  std::map<std::string, int> per_client_;
};

// The address of a connection's peer as text ("127.0.0.1", "::1"; IPv4-mapped IPv6 addresses as plain IPv4),
// or "" when the socket has none.
std::string peer_address(int fd);

// httplib's server with hearth's connection handling (above). Limits and events are set before listening.
class Listener : public httplib::Server {
 public:
  void limits_set(const ConnectionLimits& limits, ConnectionEvents events);
  // The most connection threads the pool may run: one per admissible connection and a few for refusals.
  int threads() const;
  // Graceful stop, in two steps: stop accepting (the listening socket is shut down, accept() fails and the
  // listen loop ends), then, once in-flight work is done, end the keep-alive loops (httplib::Server::stop()
  // would also cut streamed responses short).
  void stop_accepting();
  void close_idle();
  // httplib listens with a backlog of 5 (compiled into Debian's libcpp-httplib). Clients that open a connection
  // per request overflow it when the accept thread is briefly starved, and the dropped handshakes end as
  // connection resets: listen() again on the bound socket to enlarge the queue (the kernel caps it at
  // net.core.somaxconn).
  void backlog_set(int n);

 private:
  bool process_and_close_socket(socket_t sock) override;
  // Waits for the next request's first byte: false on idle timeout, a closed connection or a stopping server.
  bool request_wait(int fd, bool buffered) const;

  ConnectionLimits limits_;
  ConnectionEvents events_;
  std::unique_ptr<ConnectionGate> gate_ = std::make_unique<ConnectionGate>(limits_.max_total, limits_.max_per_client);
};

// The socket of the connection the calling thread is serving, or -1 outside one.
int connection_fd_current();

// True when the peer has closed its side, even if bytes it sent before are still unread, or the connection
// failed. Never blocks; thread-safe. Linux only (POLLRDHUP).
bool peer_closed(int fd);

}  // namespace hearth::serve
