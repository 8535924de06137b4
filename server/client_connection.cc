#include "server/client_connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace stave::server {
namespace {

// An address as httplib writes it (getnameinfo, numeric host and port), so the two compare.
bool Matches(const sockaddr_storage& address, socklen_t length, const std::string& host, int port) {
  char host_text[NI_MAXHOST], port_text[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host_text, sizeof host_text, port_text,
                  sizeof port_text, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  int number = -1;
  return absl::SimpleAtoi(port_text, &number) && number == port && host == host_text;
}

}  // namespace

ClientConnection ClientConnection::Find(const std::string& local_addr, int local_port,
                                        const std::string& remote_addr, int remote_port) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    int fd = -1;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &fd)) continue;
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (ec || !absl::StartsWith(target.string(), "socket:")) continue;
    sockaddr_storage peer{}, local{};
    socklen_t peer_length = sizeof peer, local_length = sizeof local;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) continue;
    if (!Matches(peer, peer_length, remote_addr, remote_port)) continue;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_length) != 0) continue;
    if (Matches(local, local_length, local_addr, local_port)) return ClientConnection(fd);
  }
  return ClientConnection(-1);
}

bool ClientConnection::Closed() const {
  if (fd_ < 0) return false;
  pollfd p{.fd = fd_, .events = POLLIN | POLLRDHUP, .revents = 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) return true;
  if (!(p.revents & POLLIN)) return false;
  // Readable: either more bytes (still there) or the end of the stream (gone).
  char byte;
  const ssize_t n = recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace stave::server
