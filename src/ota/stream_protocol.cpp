#include "ota/stream_protocol.hpp"

#include "common/base64.hpp"
#include "common/hex.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cbor.h>

#include <algorithm>
#include <limits>

namespace fleetcore::ota {

namespace json = boost::json;

std::string_view error_code(stream_error e) noexcept {
  switch (e) {
    case stream_error::none: return "";
    case stream_error::invalid_topic: return "InvalidTopic";
    case stream_error::invalid_json: return "InvalidJson";
    case stream_error::invalid_cbor: return "InvalidCbor";
    case stream_error::invalid_request: return "InvalidRequest";
    case stream_error::unauthorized: return "Unauthorized";
    case stream_error::block_size_out_of_bounds: return "BlockSizeOutOfBounds";
    case stream_error::offset_out_of_bounds: return "OffsetOutOfBounds";
    case stream_error::block_count_limit_exceeded: return "BlockCountLimitExceeded";
    case stream_error::block_bitmap_limit_exceeded: return "BlockBitmapLimitExceeded";
    case stream_error::resource_not_found: return "ResourceNotFound";
    case stream_error::version_mismatch: return "VersionMismatch";
    case stream_error::etag_mismatch: return "ETagMismatch";
    case stream_error::internal_error: return "InternalError";
  }
  return "InternalError";
}

namespace {

/// A request's member, whichever format carried it.
struct field {
  enum class kind : std::uint8_t { integer, text, bytes, other } type = kind::other;
  std::int64_t integer = 0;  // a value beyond int64 is clamped (every limit refuses it)
  std::string text;          // text or bytes
};
using fields = std::vector<std::pair<std::string, field>>;

bool decode_json(std::string_view payload, fields& out) {
  boost::system::error_code ec;
  auto v = json::parse(payload, ec);
  if (ec || !v.is_object()) return false;
  for (const auto& [key, value] : v.as_object()) {
    field f;
    if (value.is_int64()) {
      f.type = field::kind::integer;
      f.integer = value.get_int64();
    } else if (value.is_uint64()) {
      f.type = field::kind::integer;
      f.integer = std::numeric_limits<std::int64_t>::max();
    } else if (value.is_string()) {
      f.type = field::kind::text;
      f.text = value.get_string();
    }
    out.emplace_back(std::string(key), std::move(f));
  }
  return true;
}

/// A CBOR request through libcbor's streaming decoder (no allocation per item, no recursion): one
/// map whose values are kept when they are integers, text or byte strings; nested containers are
/// skipped (at most 16 deep), tags ignored.
class cbor_map_reader {
 public:
  bool read(std::string_view payload, fields& out) {
    cbor_callbacks cb = cbor_empty_callbacks;
    cb.uint8 = [](void* c, std::uint8_t v) { self(c).integer(v); };
    cb.uint16 = [](void* c, std::uint16_t v) { self(c).integer(v); };
    cb.uint32 = [](void* c, std::uint32_t v) { self(c).integer(v); };
    cb.uint64 = [](void* c, std::uint64_t v) { self(c).integer(v); };
    cb.negint8 = [](void* c, std::uint8_t v) { self(c).negative(v); };
    cb.negint16 = [](void* c, std::uint16_t v) { self(c).negative(v); };
    cb.negint32 = [](void* c, std::uint32_t v) { self(c).negative(v); };
    cb.negint64 = [](void* c, std::uint64_t v) { self(c).negative(v); };
    cb.string = [](void* c, cbor_data d, std::size_t n) { self(c).chars(field::kind::text, d, n); };
    cb.byte_string = [](void* c, cbor_data d, std::size_t n) { self(c).chars(field::kind::bytes, d, n); };
    cb.string_start = [](void* c) { self(c).chunks_start(field::kind::text); };
    cb.byte_string_start = [](void* c) { self(c).chunks_start(field::kind::bytes); };
    cb.array_start = [](void* c, std::size_t n) { self(c).container(false, false, n); };
    cb.indef_array_start = [](void* c) { self(c).container(false, true, 0); };
    cb.map_start = [](void* c, std::size_t n) { self(c).container(true, false, n); };
    cb.indef_map_start = [](void* c) { self(c).container(true, true, 0); };
    cb.float2 = [](void* c, float) { self(c).complete({}); };
    cb.float4 = [](void* c, float) { self(c).complete({}); };
    cb.float8 = [](void* c, double) { self(c).complete({}); };
    cb.null = [](void* c) { self(c).complete({}); };
    cb.undefined = [](void* c) { self(c).complete({}); };
    cb.boolean = [](void* c, bool) { self(c).complete({}); };
    cb.indef_break = [](void* c) { self(c).end_indefinite(); };

    const auto* data = reinterpret_cast<cbor_data>(payload.data());
    std::size_t pos = 0;
    while (pos < payload.size() && !finished_ && !failed_) {
      auto r = cbor_stream_decode(data + pos, payload.size() - pos, &cb, this);
      if (r.status != CBOR_DECODER_FINISHED || r.read == 0) return false;
      pos += r.read;
    }
    if (failed_ || !finished_ || pos != payload.size()) return false;
    out = std::move(fields_);
    return true;
  }

 private:
  static cbor_map_reader& self(void* c) { return *static_cast<cbor_map_reader*>(c); }
  struct frame {
    bool indefinite;
    std::uint64_t remaining;
  };
  static constexpr std::size_t max_depth = 16;

  void integer(std::uint64_t v) {
    field f;
    f.type = field::kind::integer;
    f.integer = v > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ? std::numeric_limits<std::int64_t>::max()
                                                                          : std::int64_t(v);
    complete(std::move(f));
  }
  void negative(std::uint64_t v) {  // the value is -1 - v
    field f;
    f.type = field::kind::integer;
    f.integer = v >= std::uint64_t(std::numeric_limits<std::int64_t>::max()) ? std::numeric_limits<std::int64_t>::min()
                                                                           : -1 - std::int64_t(v);
    complete(std::move(f));
  }
  void chars(field::kind k, cbor_data d, std::size_t n) {
    if (chunked_) {
      if (k != chunk_kind_) failed_ = true;
      else chunk_.text.append(reinterpret_cast<const char*>(d), n);
      return;
    }
    field f;
    f.type = k;
    f.text.assign(reinterpret_cast<const char*>(d), n);
    complete(std::move(f));
  }
  void chunks_start(field::kind k) {
    if (chunked_) {
      failed_ = true;
      return;
    }
    chunked_ = true;
    chunk_kind_ = k;
    chunk_ = field{};
    chunk_.type = k;
  }
  void container(bool is_map, bool indefinite, std::uint64_t entries) {
    // A map of n entries holds 2n items; no payload can hold 2^60 of them.
    if (chunked_ || entries > (std::uint64_t(1) << 60)) {
      failed_ = true;
      return;
    }
    const std::uint64_t items = is_map ? 2 * entries : entries;
    if (!started_) {  // the request itself: a map
      if (!is_map) failed_ = true;
      started_ = true;
      top_indefinite_ = indefinite;
      top_remaining_ = items;
      if (!indefinite && items == 0) finished_ = true;
      return;
    }
    if (finished_ || nested_.size() >= max_depth) {
      failed_ = true;
      return;
    }
    if (!indefinite && items == 0) {
      complete({});
      return;
    }
    nested_.push_back({indefinite, items});
  }
  void end_indefinite() {
    if (chunked_) {
      chunked_ = false;
      complete(std::move(chunk_));
      return;
    }
    if (!nested_.empty()) {
      if (!nested_.back().indefinite) {
        failed_ = true;
        return;
      }
      nested_.pop_back();
      complete({});
      return;
    }
    if (started_ && top_indefinite_ && !finished_ && expecting_key_) finished_ = true;
    else failed_ = true;
  }
  /// An item ended (a scalar, or a nested container closed).
  void complete(field f) {
    if (chunked_) {
      failed_ = true;
      return;
    }
    if (!nested_.empty()) {
      auto& top = nested_.back();
      if (!top.indefinite && --top.remaining == 0) {
        nested_.pop_back();
        complete({});
      }
      return;
    }
    if (!started_ || finished_) {  // a scalar where the map should be
      failed_ = true;
      return;
    }
    if (expecting_key_) {
      key_ = f.type == field::kind::text ? std::move(f.text) : std::string();
      expecting_key_ = false;
    } else {
      if (!key_.empty()) fields_.emplace_back(std::move(key_), std::move(f));
      key_.clear();
      expecting_key_ = true;
    }
    if (!top_indefinite_ && --top_remaining_ == 0) finished_ = true;
  }

  fields fields_;
  std::vector<frame> nested_;
  bool started_ = false, finished_ = false, failed_ = false;
  bool top_indefinite_ = false;
  std::uint64_t top_remaining_ = 0;
  bool expecting_key_ = true;
  std::string key_;
  bool chunked_ = false;
  field::kind chunk_kind_ = field::kind::other;
  field chunk_;
};

const field* find(const fields& fs, std::string_view key) {
  // The last one wins, as with JSON objects whose keys repeat.
  for (auto it = fs.rbegin(); it != fs.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

/// The bitmap as JSON carries it: the hex digits of its bytes, first byte first, with or without 0x.
std::optional<std::string> bitmap_from_hex(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  if (text.empty()) return std::nullopt;
  if (text.size() % 2) return common::unhex("0" + std::string(text));
  return common::unhex(text);
}

}  // namespace

stream_request decode_request(wire_format format, bool get, std::string_view payload, stream_rejection& rejection) {
  stream_request r;
  rejection = {};
  auto reject = [&](stream_error e, std::string message) {
    rejection.error = e;
    rejection.message = std::move(message);
    return r;
  };
  fields fs;
  if (payload.empty() && !get) {
    // A DescribeStream without a body: nothing to echo.
  } else if (format == wire_format::json) {
    if (!decode_json(payload, fs)) return reject(stream_error::invalid_json, "the request is not a JSON object");
  } else if (!cbor_map_reader{}.read(payload, fs)) {
    return reject(stream_error::invalid_cbor, "the request is not a CBOR map");
  }

  if (const auto* c = find(fs, "c"); c || (c = find(fs, "clientToken"))) {
    if (c->type != field::kind::text || c->text.size() > stream_limits::max_client_token)
      return reject(stream_error::invalid_request, "the client token must be a string of at most 64 bytes");
    r.client_token = c->text;
    rejection.client_token = r.client_token;
  }
  auto integer = [&](std::string_view key, const char* what, std::optional<std::int64_t>& out) {
    const auto* f = find(fs, key);
    if (!f) return true;
    if (f->type != field::kind::integer) {
      reject(stream_error::invalid_request, std::string(what) + " must be an integer");
      return false;
    }
    out = f->integer;
    return true;
  };
  std::optional<std::int64_t> version, file, size, offset, count;
  if (!integer("s", "the stream version (s)", version)) return r;
  r.version = version;
  if (!get) return r;

  if (!integer("f", "the file id (f)", file) || !integer("l", "the block size (l)", size) ||
      !integer("o", "the block offset (o)", offset) || !integer("n", "the number of blocks (n)", count))
    return r;
  if (!file) return reject(stream_error::invalid_request, "the file id (f) is required");
  if (*file < 0 || *file > 255) return reject(stream_error::invalid_request, "the file id (f) must be 0-255");
  r.file = *file;
  if (!size) return reject(stream_error::invalid_request, "the block size (l) is required");
  if (*size < stream_limits::min_block_size || *size > stream_limits::max_block_size)
    return reject(stream_error::block_size_out_of_bounds, "the block size (l) must be 256-131072 bytes");
  r.block_size = *size;
  if (offset && (*offset < 0 || *offset > stream_limits::max_offset))
    return reject(stream_error::offset_out_of_bounds, "the block offset (o) must be 0-98304");
  r.offset = offset.value_or(0);
  if (count && (*count < 0 || *count > stream_limits::max_block_count))
    return reject(stream_error::block_count_limit_exceeded, "the number of blocks (n) must be 0-98304");
  if (count && *count > 0) r.count = count;

  if (const auto* b = find(fs, "b")) {
    if (b->type == field::kind::bytes) {
      r.bitmap = b->text;
    } else if (b->type == field::kind::text) {
      r.bitmap = bitmap_from_hex(b->text);
      if (!r.bitmap) return reject(stream_error::invalid_request, "the bitmap (b) must be hexadecimal");
    } else {
      return reject(stream_error::invalid_request, "the bitmap (b) must be a hex string or a byte string");
    }
    if (r.bitmap->size() > stream_limits::max_bitmap_bytes)
      return reject(stream_error::block_bitmap_limit_exceeded, "the bitmap (b) must be under 12288 bytes");
  }
  return r;
}

std::vector<std::uint32_t> select_blocks(const stream_request& r, std::uint64_t file_size, stream_rejection& rejection) {
  std::vector<std::uint32_t> blocks;
  const auto block_size = std::uint64_t(r.block_size);
  const std::uint64_t total = (file_size + block_size - 1) / block_size;
  const auto offset = std::uint64_t(r.offset);
  const std::uint64_t by_size = std::max<std::uint64_t>(1, stream_limits::max_bytes_per_request / block_size);
  const std::uint64_t limit = std::min<std::uint64_t>(by_size, r.count ? std::uint64_t(*r.count) : by_size);
  auto refuse = [&](std::string message) {
    rejection.error = stream_error::resource_not_found;
    rejection.message = std::move(message);
    rejection.client_token = r.client_token;
    blocks.clear();
    return blocks;
  };
  if (offset >= total) return refuse("the block offset (o) is past the end of the file");
  if (r.bitmap) {
    for (std::size_t byte = 0; byte < r.bitmap->size() && blocks.size() < limit; ++byte) {
      const auto bits = static_cast<unsigned char>((*r.bitmap)[byte]);
      for (int bit = 0; bit < 8 && bits && blocks.size() < limit; ++bit) {
        if (!(bits & (1u << bit))) continue;
        const std::uint64_t block = offset + byte * 8 + std::uint64_t(bit);
        if (block < total) blocks.push_back(std::uint32_t(block));
      }
    }
    if (blocks.empty()) return refuse("the bitmap (b) asks for no block of the file");
    return blocks;
  }
  for (std::uint64_t b = offset; b < total && blocks.size() < limit; ++b) blocks.push_back(std::uint32_t(b));
  return blocks;
}

namespace {

/// A CBOR map written head by head (every item here is small and definite).
class cbor_writer {
 public:
  explicit cbor_writer(std::size_t reserve) { out_.reserve(reserve); }
  void map(std::size_t n) { head(cbor_encode_map_start, n); }
  void array(std::size_t n) { head(cbor_encode_array_start, n); }
  void uint(std::uint64_t v) { head(cbor_encode_uint, v); }
  void text(std::string_view s) {
    head(cbor_encode_string_start, s.size());
    out_ += s;
  }
  void bytes(std::string_view s) {
    head(cbor_encode_bytestring_start, s.size());
    out_ += s;
  }
  std::string take() { return std::move(out_); }

 private:
  template <typename Encode, typename T>
  void head(Encode encode, T value) {
    unsigned char buf[9];
    const std::size_t n = encode(value, buf, sizeof buf);
    out_.append(reinterpret_cast<const char*>(buf), n);
  }
  std::string out_;
};

}  // namespace

std::string encode_description(wire_format format, const std::optional<std::string>& client_token,
                               std::int64_t version, std::string_view description,
                               const std::vector<stream_file_info>& files) {
  if (format == wire_format::json) {
    json::object o;
    if (client_token) o["c"] = *client_token;
    o["s"] = version;
    o["d"] = description;
    json::array r;
    for (const auto& f : files) r.push_back(json::object{{"f", f.id}, {"z", f.size}});
    o["r"] = std::move(r);
    return json::serialize(o);
  }
  cbor_writer w(64 + description.size() + files.size() * 12);
  w.map(client_token ? 4 : 3);
  if (client_token) {
    w.text("c");
    w.text(*client_token);
  }
  w.text("s");
  w.uint(std::uint64_t(std::max<std::int64_t>(version, 0)));
  w.text("d");
  w.text(description);
  w.text("r");
  w.array(files.size());
  for (const auto& f : files) {
    w.map(2);
    w.text("f");
    w.uint(f.id);
    w.text("z");
    w.uint(f.size);
  }
  return w.take();
}

std::string encode_block(wire_format format, const std::optional<std::string>& client_token, std::uint32_t file,
                         std::uint32_t block, std::string_view payload) {
  if (format == wire_format::json) {
    json::object o;
    if (client_token) o["c"] = *client_token;
    o["f"] = file;
    o["l"] = payload.size();
    o["i"] = block;
    o["p"] = common::base64_encode(payload);
    return json::serialize(o);
  }
  cbor_writer w(payload.size() + 96);
  w.map(client_token ? 5 : 4);
  if (client_token) {
    w.text("c");
    w.text(*client_token);
  }
  w.text("f");
  w.uint(file);
  w.text("l");
  w.uint(payload.size());
  w.text("i");
  w.uint(block);
  w.text("p");
  w.bytes(payload);
  return w.take();
}

std::string encode_rejection(wire_format format, const stream_rejection& r) {
  if (format == wire_format::json) {
    json::object o{{"o", error_code(r.error)}, {"m", r.message}};
    if (r.client_token) o["c"] = *r.client_token;
    return json::serialize(o);
  }
  cbor_writer w(96 + r.message.size());
  w.map(r.client_token ? 3 : 2);
  w.text("o");
  w.text(error_code(r.error));
  w.text("m");
  w.text(r.message);
  if (r.client_token) {
    w.text("c");
    w.text(*r.client_token);
  }
  return w.take();
}

}  // namespace fleetcore::ota
