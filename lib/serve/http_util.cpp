#include "serve/http_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace hearth::serve {
namespace {

// An endpoint as the kernel writes it in /proc/net/tcp and tcp6: the address's 32-bit words, each as %08X
// of its value in host byte order, then ':' and the port as %04X. Empty when `addr` is not an address.
std::string proc_net_endpoint(std::string addr, int port, bool v6) {
  addr = addr.substr(0, addr.find('%'));  // drop an IPv6 zone ("fe80::1%eth0")
  char out[48];
  if (v6) {
    in6_addr a{};
    if (inet_pton(AF_INET6, addr.c_str(), &a) != 1) return "";
    uint32_t w[4];
    std::memcpy(w, &a, sizeof w);
    std::snprintf(out, sizeof out, "%08X%08X%08X%08X:%04X", w[0], w[1], w[2], w[3], port);
  } else {
    in_addr a{};
    if (inet_pton(AF_INET, addr.c_str(), &a) != 1) return "";
    std::snprintf(out, sizeof out, "%08X:%04X", a.s_addr, port);
  }
  return out;
}

// The inode of the TCP socket with these endpoints (proc_net_endpoint form), or 0.
unsigned long socket_inode(const char* table, const std::string& local, const std::string& remote) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // column titles
  while (std::getline(in, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    std::istringstream fields(line);
    std::string sl, la, ra, st, queues, timer, retransmits, uid, timeout;
    unsigned long inode = 0;
    fields >> sl >> la >> ra >> st >> queues >> timer >> retransmits >> uid >> timeout >> inode;
    if (fields && la == local && ra == remote) return inode;
  }
  return 0;
}

}  // namespace

int connection_fd(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port) {
  const bool v6 = local_addr.find(':') != std::string::npos;
  const std::string local = proc_net_endpoint(local_addr, local_port, v6);
  const std::string remote = proc_net_endpoint(remote_addr, remote_port, v6);
  if (local.empty() || remote.empty()) return -1;
  const unsigned long inode = socket_inode(v6 ? "/proc/net/tcp6" : "/proc/net/tcp", local, remote);
  if (inode == 0) return -1;
  const std::string target = "socket:[" + std::to_string(inode) + "]";
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    // readlink names the open file without using the fd (which another thread may be closing meanwhile).
    char link[64];
    ssize_t n = readlink((std::string("/proc/self/fd/") + e->d_name).c_str(), link, sizeof link);
    if (n > 0 && target.compare(0, std::string::npos, link, static_cast<size_t>(n)) == 0) {
      found = std::atoi(e->d_name);
      break;
    }
  }
  closedir(dir);
  return found;
}

bool peer_closed(int fd) {
  if (fd < 0) return false;
  // POLLRDHUP: the peer shut its side down, even with request bytes still unread (a pipelined request);
  // POLLHUP/POLLERR: the connection is gone (reset). poll consumes nothing; its own failure (EINTR,
  // ENOMEM) says nothing about the peer, so it counts as "still there" until the next check.
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

}  // namespace hearth::serve
