// Small HTTP helpers cpp-httplib does not have: telling whether the client of a request is still there.
//
// cpp-httplib 0.11 gives a handler no access to its socket, so connection_fd() finds it from the request's
// local and remote address/port: the kernel's socket table (/proc/net/tcp or tcp6) gives the socket's
// inode, and the fd whose /proc/self/fd link names that inode is the connection's. It never calls anything
// on another fd (other connections' sockets are closed and their numbers reused by httplib's threads at any
// time). The match is unique while the request is being handled, since httplib closes the socket only after
// the handler returns. peer_closed() then polls it without consuming anything. Linux only (/proc, POLLRDHUP).
#pragma once

#include <string>

namespace hearth::serve {

// The socket fd of the TCP connection with this local and remote address/port (addresses as httplib gives
// them: "127.0.0.1", "::1", "::ffff:127.0.0.1"), or -1 if none is found. Thread-safe.
int connection_fd(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);

// True when the peer has closed its side, even if bytes it sent before are still unread, or the connection
// failed. Never blocks; thread-safe.
bool peer_closed(int fd);

}  // namespace hearth::serve
