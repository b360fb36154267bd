#include "provisioning/cbor_json.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cbor.h>

#include <cmath>
#include <limits>
#include <vector>

namespace fleetcore::provisioning {

namespace json = boost::json;

namespace {

constexpr std::size_t k_max_depth = 16;

/// Builds one JSON value from libcbor's streaming callbacks.
class builder {
 public:
  std::optional<json::value> read(std::string_view payload) {
    cbor_callbacks cb = cbor_empty_callbacks;
    cb.uint8 = [](void* c, std::uint8_t v) { self(c).integer(v); };
    cb.uint16 = [](void* c, std::uint16_t v) { self(c).integer(v); };
    cb.uint32 = [](void* c, std::uint32_t v) { self(c).integer(v); };
    cb.uint64 = [](void* c, std::uint64_t v) { self(c).integer(v); };
    cb.negint8 = [](void* c, std::uint8_t v) { self(c).negative(v); };
    cb.negint16 = [](void* c, std::uint16_t v) { self(c).negative(v); };
    cb.negint32 = [](void* c, std::uint32_t v) { self(c).negative(v); };
    cb.negint64 = [](void* c, std::uint64_t v) { self(c).negative(v); };
    cb.string = [](void* c, cbor_data d, std::size_t n) {
      self(c).add(json::string(std::string_view(reinterpret_cast<const char*>(d), n)));
    };
    cb.byte_string = [](void* c, cbor_data, std::size_t) { self(c).failed_ = true; };
    cb.string_start = [](void* c) { self(c).failed_ = true; };
    cb.byte_string_start = [](void* c) { self(c).failed_ = true; };
    cb.array_start = [](void* c, std::size_t n) { self(c).open(false, false, n); };
    cb.indef_array_start = [](void* c) { self(c).open(false, true, 0); };
    cb.map_start = [](void* c, std::size_t n) { self(c).open(true, false, n); };
    cb.indef_map_start = [](void* c) { self(c).open(true, true, 0); };
    cb.float2 = [](void* c, float v) { self(c).number(v); };
    cb.float4 = [](void* c, float v) { self(c).number(v); };
    cb.float8 = [](void* c, double v) { self(c).number(v); };
    cb.null = [](void* c) { self(c).add(nullptr); };
    cb.undefined = [](void* c) { self(c).add(nullptr); };
    cb.boolean = [](void* c, bool v) { self(c).add(v); };
    cb.indef_break = [](void* c) { self(c).close_indefinite(); };

    const auto* data = reinterpret_cast<cbor_data>(payload.data());
    std::size_t pos = 0;
    while (pos < payload.size() && !done_ && !failed_) {
      auto r = cbor_stream_decode(data + pos, payload.size() - pos, &cb, this);
      if (r.status != CBOR_DECODER_FINISHED || r.read == 0) return std::nullopt;
      pos += r.read;
    }
    if (failed_ || !done_ || pos != payload.size()) return std::nullopt;
    return std::move(result_);
  }

 private:
  static builder& self(void* c) { return *static_cast<builder*>(c); }
  struct frame {
    json::value value;  // an object or an array being filled
    bool indefinite = false;
    std::uint64_t remaining = 0;  // items left (a map's entries count twice: key and value)
    std::optional<std::string> key;
  };

  void integer(std::uint64_t v) {
    if (v > std::uint64_t(std::numeric_limits<std::int64_t>::max())) add(json::value(v));
    else add(json::value(std::int64_t(v)));
  }
  void negative(std::uint64_t v) {
    if (v >= std::uint64_t(std::numeric_limits<std::int64_t>::max())) failed_ = true;
    else add(json::value(-1 - std::int64_t(v)));
  }
  void number(double v) {
    if (!std::isfinite(v)) failed_ = true;  // JSON has no NaN nor infinity
    else add(json::value(v));
  }
  void open(bool map, bool indefinite, std::uint64_t n) {
    if (failed_ || done_ || stack_.size() >= k_max_depth || n > (std::uint64_t(1) << 40)) {
      failed_ = true;
      return;
    }
    frame f;
    f.value = map ? json::value(json::object()) : json::value(json::array());
    f.indefinite = indefinite;
    f.remaining = map ? 2 * n : n;
    stack_.push_back(std::move(f));
    if (!indefinite && n == 0) close();
  }
  void close_indefinite() {
    if (stack_.empty() || !stack_.back().indefinite || stack_.back().key) {
      failed_ = true;
      return;
    }
    close();
  }
  /// The top container is complete: it becomes an item of its parent.
  void close() {
    json::value v = std::move(stack_.back().value);
    stack_.pop_back();
    add(std::move(v));
  }
  void add(json::value v) {
    if (failed_) return;
    if (stack_.empty()) {
      if (done_) failed_ = true;
      result_ = std::move(v);
      done_ = true;
      return;
    }
    auto& top = stack_.back();
    if (top.value.is_object()) {
      if (!top.key) {
        if (!v.is_string()) {
          failed_ = true;  // map keys are text here
          return;
        }
        top.key = std::string(v.get_string());
      } else {
        top.value.get_object()[*top.key] = std::move(v);
        top.key.reset();
      }
    } else {
      top.value.get_array().push_back(std::move(v));
    }
    if (!top.indefinite && --top.remaining == 0) close();
  }

  std::vector<frame> stack_;
  json::value result_;
  bool done_ = false, failed_ = false;
};

void head(std::string& out, std::size_t (*encode)(std::uint64_t, unsigned char*, std::size_t), std::uint64_t v) {
  unsigned char buf[9];
  out.append(reinterpret_cast<const char*>(buf), encode(v, buf, sizeof buf));
}
std::size_t map_start(std::uint64_t n, unsigned char* b, std::size_t s) { return cbor_encode_map_start(n, b, s); }
std::size_t array_start(std::uint64_t n, unsigned char* b, std::size_t s) { return cbor_encode_array_start(n, b, s); }
std::size_t string_start(std::uint64_t n, unsigned char* b, std::size_t s) { return cbor_encode_string_start(n, b, s); }

void encode(std::string& out, const json::value& v) {
  unsigned char buf[9];
  switch (v.kind()) {
    case json::kind::object:
      head(out, map_start, v.get_object().size());
      for (const auto& [k, x] : v.get_object()) {
        head(out, string_start, k.size());
        out += k;
        encode(out, x);
      }
      break;
    case json::kind::array:
      head(out, array_start, v.get_array().size());
      for (const auto& x : v.get_array()) encode(out, x);
      break;
    case json::kind::string:
      head(out, string_start, v.get_string().size());
      out += v.get_string();
      break;
    case json::kind::int64:
      if (v.get_int64() >= 0) head(out, cbor_encode_uint, std::uint64_t(v.get_int64()));
      else head(out, cbor_encode_negint, std::uint64_t(-(v.get_int64() + 1)));
      break;
    case json::kind::uint64: head(out, cbor_encode_uint, v.get_uint64()); break;
    case json::kind::double_:
      out.append(reinterpret_cast<const char*>(buf), cbor_encode_double(v.get_double(), buf, sizeof buf));
      break;
    case json::kind::bool_:
      out.append(reinterpret_cast<const char*>(buf), cbor_encode_bool(v.get_bool(), buf, sizeof buf));
      break;
    case json::kind::null: out.append(reinterpret_cast<const char*>(buf), cbor_encode_null(buf, sizeof buf)); break;
  }
}

}  // namespace

std::optional<json::value> cbor_to_json(std::string_view cbor) { return builder{}.read(cbor); }

std::string json_to_cbor(const json::value& v) {
  std::string out;
  encode(out, v);
  return out;
}

}  // namespace fleetcore::provisioning
