// Wire format: a 4-byte big-endian length, then the payload. Rank 0 accepts until every other rank
// has connected; the others retry their connect until the listener is up or the timeout passes.
#include "runtime/rendezvous.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace foldplan::runtime {
namespace {

using Clock = std::chrono::steady_clock;

class Socket {
public:
  explicit Socket(int fd = -1) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ~Socket() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  int fd() const { return fd_; }

private:
  int fd_;
};

struct Context {
  const RendezvousAddress& address;
  int rank;
  Clock::time_point deadline;

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error(
        fmt::format("rendezvous at {}:{} (rank {}): {}", address.host, address.port, rank, what));
  }
  int remaining_ms() const {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
  }
};

addrinfo* resolve(const Context& context, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(context.address.port);
  const int status =
      getaddrinfo(passive ? nullptr : context.address.host.c_str(), port.c_str(), &hints, &found);
  if (status != 0)
    context.fail(fmt::format("cannot resolve the address: {}", gai_strerror(status)));
  return found;
}

// Waits until `fd` is readable or writable; false at the deadline.
bool wait_ready(const Context& context, int fd, short events) {
  pollfd entry{.fd = fd, .events = events, .revents = 0};
  return ::poll(&entry, 1, context.remaining_ms()) > 0;
}

void send_all(const Context& context, int fd, const std::string& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    if (!wait_ready(context, fd, POLLOUT))
      context.fail("timed out sending the payload");
    const ssize_t count = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (count <= 0)
      context.fail(fmt::format("send failed: {}", std::strerror(errno)));
    sent += static_cast<std::size_t>(count);
  }
}

std::string receive_exactly(const Context& context, int fd, std::size_t size) {
  std::string bytes(size, '\0');
  std::size_t received = 0;
  while (received < size) {
    if (!wait_ready(context, fd, POLLIN))
      context.fail(fmt::format("timed out after {} of {} bytes", received, size));
    const ssize_t count = ::recv(fd, bytes.data() + received, size - received, 0);
    if (count <= 0)
      context.fail(fmt::format("connection closed after {} of {} bytes", received, size));
    received += static_cast<std::size_t>(count);
  }
  return bytes;
}

std::string framed(const std::string& payload) {
  const std::uint32_t length = htonl(static_cast<std::uint32_t>(payload.size()));
  std::string bytes(sizeof length, '\0');
  std::memcpy(bytes.data(), &length, sizeof length);
  return bytes + payload;
}

void serve(const Context& context, int world_size, const std::string& payload) {
  addrinfo* found = resolve(context, true);
  Socket listener(::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0));
  const int reuse = 1;
  ::setsockopt(listener.fd(), SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
  const int bound = ::bind(listener.fd(), found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  if (listener.fd() < 0 || bound != 0 || ::listen(listener.fd(), world_size) != 0)
    context.fail(fmt::format("cannot listen: {}", std::strerror(errno)));
  const std::string message = framed(payload);
  for (int connected = 1; connected < world_size; ++connected) {
    if (!wait_ready(context, listener.fd(), POLLIN)) {
      context.fail(
          fmt::format("timed out: {} of {} ranks connected", connected - 1, world_size - 1));
    }
    Socket peer(::accept(listener.fd(), nullptr, nullptr));
    if (peer.fd() < 0)
      context.fail(fmt::format("accept failed: {}", std::strerror(errno)));
    send_all(context, peer.fd(), message);
  }
}

std::string fetch(const Context& context) {
  constexpr auto kRetry = std::chrono::milliseconds(50);
  while (true) {
    addrinfo* found = resolve(context, false);
    Socket connection(::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, 0));
    const int status = ::connect(connection.fd(), found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    if (status == 0) {
      std::uint32_t length = 0;
      const std::string header = receive_exactly(context, connection.fd(), sizeof length);
      std::memcpy(&length, header.data(), sizeof length);
      return receive_exactly(context, connection.fd(), ntohl(length));
    }
    if (Clock::now() + kRetry >= context.deadline)
      context.fail(fmt::format("timed out: rank 0 never listened ({})", std::strerror(errno)));
    std::this_thread::sleep_for(kRetry);
  }
}

} // namespace

std::string rendezvous_broadcast(const RendezvousAddress& address, int rank, int world_size,
                                 const std::string& payload, double timeout_s) {
  const Context context{.address = address,
                        .rank = rank,
                        .deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                       std::chrono::duration<double>(timeout_s))};
  if (rank == 0) {
    serve(context, world_size, payload);
    return payload;
  }
  return fetch(context);
}

} // namespace foldplan::runtime
