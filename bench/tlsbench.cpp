// tlsbench: mutual-TLS connections per second, full or resumed handshakes (issue 15).
//
//   tlsbench --port P --ca ca.crt --cert dev.crt --key dev.key [--tls 1.3|1.2] [--resume]
//            [--threads K] [--seconds S] [--client-id ID]
//
// Each of K threads connects, one connection after another, for S seconds: TCP connect, TLS handshake
// presenting the device certificate (the leaf alone, as devices send it), MQTT 3.1.1 CONNECT as ID
// (default tlsbench-<thread>), CONNACK read, close. With --resume every connection offers the session of the
// previous one (its ticket: TLS 1.3 sends it after the handshake, before the CONNACK), as a device
// that keeps its session across reconnects does; the first is a full handshake. Prints one line:
//   tls version=1.3 resume=1 threads=K connections=N resumed=R failures=F per_s=X
#include <CLI/CLI.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

namespace {

struct totals {
  std::atomic<long> connections{0}, resumed{0}, failures{0};
};

std::string connect_packet(const std::string& client_id) {
  std::string body = std::string("\x00\x04MQTT\x04\x02\x00\x3c", 10);
  body += static_cast<char>(client_id.size() >> 8);
  body += static_cast<char>(client_id.size() & 0xff);
  body += client_id;
  return std::string(1, '\x10') + static_cast<char>(body.size()) + body;  // short ids: one length byte
}

/// One connection; returns whether it got CONNACK 0, and leaves the session to offer next in `session`.
bool connect_once(SSL_CTX* ctx, int port, const std::string& packet, SSL_SESSION*& session, bool& reused) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (session) SSL_set_session(ssl, session);
    unsigned char connack[4];
    if (SSL_connect(ssl) == 1 && SSL_write(ssl, packet.data(), static_cast<int>(packet.size())) > 0 &&
        SSL_read(ssl, connack, sizeof connack) == 4 && connack[0] == 0x20 && connack[3] == 0) {
      ok = true;
      reused = SSL_session_reused(ssl) == 1;
      if (session) SSL_SESSION_free(session);
      session = SSL_get1_session(ssl);
      SSL_shutdown(ssl);  // close_notify: without it OpenSSL marks the session not resumable
    }
    SSL_free(ssl);
  }
  ::close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mutual-TLS connections per second, full or resumed"};
  int port = 0, threads = 2;
  double seconds = 10;
  std::string ca, cert, key, version = "1.3", client_id;
  bool resume = false;
  app.add_option("--port", port)->required();
  app.add_option("--ca", ca)->required();
  app.add_option("--cert", cert)->required();
  app.add_option("--key", key)->required();
  app.add_option("--tls", version)->check(CLI::IsMember({"1.2", "1.3"}));
  app.add_flag("--resume", resume);
  app.add_option("--threads", threads);
  app.add_option("--seconds", seconds);
  app.add_option("--client-id", client_id);
  CLI11_PARSE(app, argc, argv);

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  const int v = version == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx, v);
  SSL_CTX_set_max_proto_version(ctx, v);
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);  // the leaf alone, as devices send it
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1 ||
      SSL_CTX_use_certificate_file(ctx, cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    ERR_print_errors_fp(stderr);
    return 2;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);

  totals t;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i)
    pool.emplace_back([&, i] {
      const std::string packet = connect_packet(client_id.empty() ? "tlsbench-" + std::to_string(i) : client_id);
      SSL_SESSION* session = nullptr;
      while (std::chrono::steady_clock::now() < until) {
        bool reused = false;
        if (!connect_once(ctx, port, packet, session, reused)) {
          if (t.failures++ == 0) {
            std::fprintf(stderr, "tlsbench: first failure (TLS error or CONNACK refused):\n");
            ERR_print_errors_fp(stderr);
          }
          if (session) SSL_SESSION_free(std::exchange(session, nullptr));
          continue;
        }
        t.connections++;
        if (reused) t.resumed++;
        if (!resume) SSL_SESSION_free(std::exchange(session, nullptr));
      }
      if (session) SSL_SESSION_free(session);
    });
  for (auto& th : pool) th.join();
  std::printf("tls version=%s resume=%d threads=%d connections=%ld resumed=%ld failures=%ld per_s=%.1f\n",
              version.c_str(), resume ? 1 : 0, threads, t.connections.load(), t.resumed.load(), t.failures.load(),
              static_cast<double>(t.connections.load()) / seconds);
  SSL_CTX_free(ctx);
  return 0;
}
