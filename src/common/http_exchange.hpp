#pragma once
// One HTTP request and its response handled as streams, for APIs whose bodies may be larger than
// memory (the object store): the request's head first, its body read in pieces on demand, the
// response's head then its body written in pieces. The transport (the API server's connection)
// implements it; every call and callback runs on the transport's thread, one operation at a time.
#include <boost/system/error_code.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fleetcore::common {

class http_exchange {
 public:
  using done_fn = std::function<void(boost::system::error_code)>;
  using headers = std::vector<std::pair<std::string, std::string>>;

  virtual ~http_exchange() = default;

  virtual std::string_view method() const = 0;
  virtual std::string_view target() const = 0;  // path and query as received
  /// The request's headers as received (any case).
  virtual const std::vector<std::pair<std::string_view, std::string_view>>& request_headers() const = 0;
  /// The request header `name` (case-insensitive), empty if absent.
  std::string_view header(std::string_view name) const {
    for (const auto& [k, v] : request_headers())
      if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
            return (a | 0x20) == (b | 0x20);
          }))
        return v;
    return {};
  }
  /// The request body's declared length, if it has one (chunked bodies do not).
  virtual std::optional<std::uint64_t> content_length() const = 0;

  /// Reads the request body: `piece` for each piece, in order (returning false stops reading: the
  /// connection is closed after the response); then `done`. Answers `Expect: 100-continue` first.
  virtual void read_body(std::function<bool(std::string_view)> piece, done_fn done) = 0;
  /// Sends the response's status and headers; `content_length` bytes of body follow (send_body), or
  /// none for HEAD.
  virtual void send_head(unsigned status, headers h, std::uint64_t content_length, done_fn done) = 0;
  /// Sends the next piece of the response body.
  virtual void send_body(std::string piece, done_fn done) = 0;
  /// The exchange is over: the next request is read (or the connection closed if `keep_alive` is
  /// false, or the body was not read to its end).
  virtual void finish(bool keep_alive) = 0;
};

}  // namespace fleetcore::common
