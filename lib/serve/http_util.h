// Small HTTP helpers cpp-httplib does not have: telling whether the client of a request is still there.
//
// cpp-httplib 0.11 gives a handler no access to its socket, so connection_fd() finds it: the one socket
// of this process whose local and peer addresses are the request's (unique while the request is being
// handled, since httplib closes the socket only after the handler returns). peer_closed() then peeks at
// it without consuming anything. Linux only (/proc/self/fd).
#pragma once

#include <string>

namespace hearth::serve {

// The socket fd of the connection with this local and remote address/port, or -1 if none is found.
int connection_fd(const std::string& local_addr, int local_port, const std::string& remote_addr, int remote_port);

// True when the peer has closed its side (or the connection failed). Never blocks; thread-safe.
bool peer_closed(int fd);

}  // namespace hearth::serve
