// Whether the client of a non-streamed HTTP answer is still there. Such an answer is written only
// at its end, so until then nothing tells its handler that the client left: no write fails, and
// Debian's cpp-httplib (0.11) has no Request::is_connection_closed (later versions do). Without
// this, a client that gives up on a long completion leaves it generating to the end, holding its
// KV blocks and an HTTP thread. The connection's socket is found among the process's descriptors
// by its two addresses (which identify a TCP connection), then polled.
#pragma once

#include <string>

namespace stave::server {

class ClientConnection {
 public:
  // The open socket with these local and peer addresses (as httplib's Request reports them);
  // one that watches nothing (never closed) when there is none.
  static ClientConnection Find(const std::string& local_addr, int local_port, const std::string& remote_addr,
                               int remote_port);

  bool found() const { return fd_ >= 0; }
  // True once the peer has closed or reset the connection. Does not block. A client that only
  // sent more bytes (a pipelined request) is still there. Valid while the request is handled:
  // httplib closes the socket after the handler returns.
  bool Closed() const;

 private:
  explicit ClientConnection(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace stave::server
