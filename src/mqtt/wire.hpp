#pragma once
// Byte-level readers and writers for MQTT's data representations (section 1.5): big-endian integers,
// variable byte integers, length-prefixed strings and binary data. Internal to the codec.
#include "mqtt/errors.hpp"
#include "mqtt/utf8.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fleetcore::mqtt::wire {

/// Reads from a span; the first failure sticks in `error` and every later read fails too, so a
/// parser can read a whole structure and check once.
class reader {
 public:
  explicit reader(std::span<const std::uint8_t> data) : data_(data) {}

  std::size_t remaining() const noexcept { return data_.size() - pos_; }
  bool ok() const noexcept { return error == reason_code::success; }
  void fail(reason_code rc) noexcept {
    if (ok()) error = rc;
  }

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return data_[pos_++];
  }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    std::uint16_t v = static_cast<std::uint16_t>(data_[pos_] << 8 | data_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    std::uint32_t v = std::uint32_t(data_[pos_]) << 24 | std::uint32_t(data_[pos_ + 1]) << 16 |
                      std::uint32_t(data_[pos_ + 2]) << 8 | data_[pos_ + 3];
    pos_ += 4;
    return v;
  }
  /// A Variable Byte Integer of at most four bytes, in its minimal encoding.
  std::uint32_t varint() {
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      if (!need(1)) return 0;
      std::uint8_t b = data_[pos_++];
      value |= std::uint32_t(b & 0x7F) << (7 * i);
      if (!(b & 0x80)) {
        if (i > 0 && b == 0) fail(reason_code::malformed_packet);  // not minimal [MQTT-1.5.5-1]
        return value;
      }
    }
    fail(reason_code::malformed_packet);
    return 0;
  }
  std::string_view bytes(std::size_t n) {
    if (!need(n)) return {};
    std::string_view v(reinterpret_cast<const char*>(data_.data() + pos_), n);
    pos_ += n;
    return v;
  }
  std::string_view binary() { return bytes(u16()); }
  std::string_view utf8() {
    auto s = binary();
    if (ok() && !valid_mqtt_utf8(s)) fail(reason_code::malformed_packet);
    return s;
  }
  std::string_view rest() { return bytes(remaining()); }
  /// A sub-reader over the next `n` bytes (e.g. a property block); this reader skips them.
  reader sub(std::size_t n) {
    if (!need(n)) return reader({});
    reader r(data_.subspan(pos_, n));
    pos_ += n;
    return r;
  }

  reason_code error = reason_code::success;

 private:
  bool need(std::size_t n) {
    if (!ok()) return false;
    if (remaining() < n) {
      fail(reason_code::malformed_packet);
      return false;
    }
    return true;
  }
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

/// Appends to a byte vector.
class writer {
 public:
  explicit writer(std::vector<std::uint8_t>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<std::uint8_t>(v >> s));
  }
  void varint(std::uint32_t v) {
    do {
      std::uint8_t b = v & 0x7F;
      v >>= 7;
      if (v) b |= 0x80;
      out_.push_back(b);
    } while (v);
  }
  void bytes(std::string_view s) { out_.insert(out_.end(), s.begin(), s.end()); }
  void binary(std::string_view s) {
    u16(static_cast<std::uint16_t>(s.size()));
    bytes(s);
  }
  std::size_t size() const noexcept { return out_.size(); }
  std::vector<std::uint8_t>& buffer() noexcept { return out_; }

 private:
  std::vector<std::uint8_t>& out_;
};

constexpr std::size_t varint_size(std::uint32_t v) noexcept {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/// Largest value a variable byte integer can hold (268,435,455).
constexpr std::uint32_t max_varint = 268'435'455;

}  // namespace fleetcore::mqtt::wire
