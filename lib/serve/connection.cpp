#include "serve/connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <system_error>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "serve/request.h"

namespace hearth::serve {
namespace {

using Clock = std::chrono::steady_clock;

thread_local int t_connection_fd = -1;

constexpr int kRefusalThreads = 16;  // pool threads beyond max_total: refusals never wait for an admitted one
constexpr int kPollSliceMs = 50;     // how often a waiting connection checks whether the server is stopping

// Milliseconds from now until `t`, rounded up (a poll that times out has reached `t`); 0 when past, at most `cap`.
int ms_until(Clock::time_point t, int cap = 1 << 30) {
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, cap));
}

// poll() for `events` until `deadline`; true when they are there (or the socket failed: the next call says how).
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, ms_until(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

void address_port(const sockaddr_storage& addr, socklen_t len, std::string& ip, int& port) {
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  ip = host;
  port = std::atoi(serv);
}

// httplib's Stream over a connected socket: reads are buffered (httplib reads a request line byte by byte) and
// must all arrive before the request's deadline; each write waits at most `write_timeout`.
class SocketStream final : public httplib::Stream {
 public:
  SocketStream(int fd, std::chrono::seconds write_timeout) : fd_(fd), write_timeout_(write_timeout) {}

  // Starts a request: its bytes must all arrive within `timeout` from now.
  void request_start(std::chrono::seconds timeout) {
    deadline_ = Clock::now() + timeout;
    timed_out_ = false;
  }
  bool timed_out() const { return timed_out_; }
  bool buffered() const { return off_ < size_; }

  bool is_readable() const override { return buffered() || wait_for(fd_, POLLIN, deadline_); }
  bool is_writable() const override {
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(write_timeout_).count())) > 0 &&
           (p.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0;
  }

  ssize_t read(char* ptr, size_t n) override {
    if (!buffered()) {
      off_ = size_ = 0;
      ssize_t got = receive(buf_, sizeof buf_);
      if (got <= 0) return got;
      size_ = static_cast<size_t>(got);
    }
    size_t take = std::min(n, size_ - off_);
    std::memcpy(ptr, buf_ + off_, take);
    off_ += take;
    return static_cast<ssize_t>(take);
  }

  ssize_t write(const char* ptr, size_t n) override {
    const auto deadline = Clock::now() + write_timeout_;
    for (;;) {
      ssize_t sent = ::send(fd_, ptr, n, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent >= 0) return sent;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (!wait_for(fd_, POLLOUT, deadline)) return -1;  // the client stopped reading
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) address_port(addr, len, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) address_port(addr, len, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  // One recv before the deadline: > 0 bytes, 0 at the peer's end, -1 on failure or when the deadline passed.
  ssize_t receive(char* ptr, size_t n) {
    for (;;) {
      if (!wait_for(fd_, POLLIN, deadline_)) {
        timed_out_ = Clock::now() >= deadline_;
        return -1;
      }
      ssize_t got = ::recv(fd_, ptr, n, MSG_DONTWAIT);
      if (got >= 0) return got;
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    }
  }

  int fd_;
  std::chrono::seconds write_timeout_;
  Clock::time_point deadline_ = Clock::now();
  bool timed_out_ = false;
  char buf_[4096];
  size_t off_ = 0, size_ = 0;
};

// httplib's task queue with threads started as connections need them, up to `max`, and retired after
// `kIdleRetire` without work: each thread costs ~110 KB of memory even idle (libtorch's thread-local storage),
// so a pool started whole at --max-connections would hold ~110 MB from startup. A thread that cannot be started
// (the machine's limit) leaves its task queued for the next free thread.
class GrowingPool final : public httplib::TaskQueue {
 public:
  explicit GrowingPool(int max) : max_(max) {}
  ~GrowingPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    reap();
    tasks_.push_back(std::move(fn));
    if (idle_ < static_cast<int>(tasks_.size()) && static_cast<int>(workers_.size()) < max_) {
      try {
        auto id = next_id_++;
        workers_.emplace(id, std::thread([this, id] { work(id); }));
      } catch (const std::system_error&) {
        // no thread now: the task waits for one of the running threads
      }
    }
    cv_.notify_one();
  }

  void shutdown() override {
    std::map<uint64_t, std::thread> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        reap();
        if (workers_.empty()) return;
        all.swap(workers_);
      }
      for (auto& [id, t] : all) t.join();
      all.clear();
    }
  }

 private:
  static constexpr auto kIdleRetire = std::chrono::seconds(30);

  void work(uint64_t id) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++idle_;
      bool got = cv_.wait_for(lock, kIdleRetire, [&] { return stopping_ || !tasks_.empty(); });
      --idle_;
      if (!tasks_.empty()) {
        auto fn = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        fn();
        lock.lock();
        continue;
      }
      if (stopping_ || !got) break;  // stopping with nothing left, or idle for kIdleRetire
    }
    auto it = workers_.find(id);
    if (it != workers_.end()) {  // shutdown() joins the threads it took; a retiring one is joined by reap()
      finished_.push_back(std::move(it->second));
      workers_.erase(it);
    }
  }

  // Joins threads that have retired (they are past their last use of the pool's state). Called with mu_ held.
  void reap() {
    for (auto& t : finished_) t.join();
    finished_.clear();
  }

  const int max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::map<uint64_t, std::thread> workers_;
  std::vector<std::thread> finished_;
  uint64_t next_id_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
};

// Answers a connection that is not admitted: a 503 with an OpenAI error body, then the close. What the client
// already sent is read (briefly) first, so that the close is a FIN, not a reset that could discard the answer.
void refuse(int fd, const std::string& message) {
  std::string body = api_error_body(ApiError(503, message, api_error_type(503), "", "too_many_connections")).dump();
  std::string response = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
  SocketStream out(fd, std::chrono::seconds(1));
  for (size_t off = 0; off < response.size();) {
    ssize_t n = out.write(response.data() + off, response.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  const auto until = Clock::now() + std::chrono::milliseconds(20);
  while (wait_for(fd, POLLIN, until) && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

ConnectionGate::Verdict ConnectionGate::admit(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_ >= max_total_) return Verdict::kTotal;
  int& mine = per_client_[client];
  if (mine >= max_per_client_) return Verdict::kPerClient;
  ++mine;
  ++open_;
  return Verdict::kAdmitted;
}

void ConnectionGate::release(const std::string& client) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = per_client_.find(client);
  if (it == per_client_.end()) return;
  if (--it->second <= 0) per_client_.erase(it);
  --open_;
}

int ConnectionGate::open() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

std::string peer_address(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  std::string ip;
  int port = 0;
  address_port(addr, len, ip, port);
  if (ip.rfind("::ffff:", 0) == 0 && ip.find('.') != std::string::npos) ip.erase(0, 7);  // IPv4-mapped
  return ip;
}

void Listener::limits_set(const ConnectionLimits& limits, ConnectionEvents events) {
  limits_ = limits;
  events_ = std::move(events);
  gate_ = std::make_unique<ConnectionGate>(limits.max_total, limits.max_per_client);
  new_task_queue = [n = threads()] { return new GrowingPool(n); };
}

int Listener::threads() const { return limits_.max_total + kRefusalThreads; }

void Listener::stop_accepting() {
  socket_t sock = svr_sock_;
  if (sock != INVALID_SOCKET) ::shutdown(sock, SHUT_RDWR);
}

void Listener::close_idle() { svr_sock_ = INVALID_SOCKET; }  // httplib closed the socket when its loop ended

void Listener::backlog_set(int n) {
  if (svr_sock_ != INVALID_SOCKET) ::listen(svr_sock_, n);
}

bool Listener::request_wait(int fd, bool buffered) const {
  if (buffered) return true;  // a pipelined request is already here
  const auto idle_end = Clock::now() + std::chrono::seconds(limits_.idle_timeout_s);
  while (svr_sock_ != INVALID_SOCKET) {
    const auto slice = std::min(idle_end, Clock::now() + std::chrono::milliseconds(kPollSliceMs));
    if (wait_for(fd, POLLIN, slice)) return true;  // bytes, or the peer's end: the request read tells which
    if (Clock::now() >= idle_end) return false;
  }
  return false;
}

bool Listener::process_and_close_socket(socket_t sock) {
  const std::string client = peer_address(sock);
  const auto verdict = gate_->admit(client);
  if (verdict != ConnectionGate::Verdict::kAdmitted) {
    const bool total = verdict == ConnectionGate::Verdict::kTotal;
    refuse(sock, total ? "The server has too many open connections (--max-connections " +
                             std::to_string(limits_.max_total) + "); retry later"
                       : "Too many open connections from your address (--max-connections-per-client " +
                             std::to_string(limits_.max_per_client) + "); close some, then retry");
    if (events_.refused) events_.refused(total ? "total" : "per_client");
    ::close(sock);
    return false;
  }
  if (events_.opened) events_.opened(1);
  t_connection_fd = sock;
  SocketStream strm(sock, std::chrono::seconds(limits_.write_timeout_s));
  bool ok = false;
  for (size_t left = keep_alive_max_count_; left > 0; --left) {
    if (!request_wait(sock, strm.buffered())) break;
    strm.request_start(std::chrono::seconds(limits_.request_timeout_s));
    bool closed = false;
    ok = process_request(strm, left == 1 || svr_sock_ == INVALID_SOCKET, closed, nullptr);
    if (strm.timed_out()) {
      if (events_.timed_out) events_.timed_out(client);
      break;
    }
    if (!ok || closed) break;
  }
  t_connection_fd = -1;
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  gate_->release(client);
  if (events_.opened) events_.opened(-1);
  return ok;
}

int connection_fd_current() { return t_connection_fd; }

bool peer_closed(int fd) {
  if (fd < 0) return false;
  // POLLRDHUP: the peer shut its side down, even with request bytes still unread (a pipelined request);
  // POLLHUP/POLLERR: the connection is gone (reset). poll consumes nothing; its own failure (EINTR,
  // ENOMEM) says nothing about the peer, so it counts as "still there" until the next check.
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace hearth::serve
