#include "cluster/wire.hpp"

#include <limits>

namespace fleetcore::cluster::wire {

namespace {

constexpr char version = 1;

class writer {
 public:
  explicit writer(kind k) {
    out_.push_back(static_cast<char>(k));
    out_.push_back(version);
  }
  template <typename T>
  writer& num(T v) {
    for (int i = sizeof(T) - 1; i >= 0; --i) out_.push_back(static_cast<char>(static_cast<std::uint64_t>(v) >> (8 * i)));
    return *this;
  }
  writer& str16(std::string_view s) { return num(static_cast<std::uint16_t>(s.size())).raw(s); }
  writer& str32(std::string_view s) { return num(static_cast<std::uint32_t>(s.size())).raw(s); }
  writer& raw(std::string_view s) {
    out_.append(s);
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class reader {
 public:
  reader(std::string_view in, kind k) : in_(in) {
    if (in_.size() < 2 || in_[0] != static_cast<char>(k) || in_[1] != version) ok_ = false;
    pos_ = 2;
  }
  template <typename T>
  T num() {
    if (!ok_ || in_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return T{};
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) v = v << 8 | static_cast<unsigned char>(in_[pos_ + i]);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }
  std::string str16() { return bytes(num<std::uint16_t>()); }
  std::string str32() { return bytes(num<std::uint32_t>()); }
  bool flag() {
    auto b = num<std::uint8_t>();
    if (b > 1) ok_ = false;
    return b == 1;
  }
  std::string rest() {
    auto r = ok_ ? std::string(in_.substr(pos_)) : std::string();
    pos_ = in_.size();
    return r;
  }
  /// All of the frame was read and made sense.
  bool done() const { return ok_ && pos_ == in_.size(); }

 private:
  std::string bytes(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    auto s = std::string(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::string encode(const hello& h) { return writer(kind::hello).str16(h.node).num(h.epoch).take(); }

std::string encode(const bye& b) { return writer(kind::bye).str16(b.node).num(b.epoch).take(); }

std::string encode(const inherited& t) { return writer(kind::inherited).str16(t.node).num(t.epoch).str16(t.of).take(); }

std::string encode(const interest& i) {
  writer w(kind::interest);
  w.str16(i.node).num(i.epoch).num(i.request).num(static_cast<std::uint8_t>(i.reset | i.want_reply << 1)).num(static_cast<std::uint32_t>(i.changes.size()));
  for (const auto& [filter, added] : i.changes) w.num(std::uint8_t{added}).str16(filter);
  return w.take();
}

std::string encode(const claim& c) {
  return writer(kind::claim).str16(c.node).num(c.epoch).num(c.request).str16(c.client_id).num(std::uint8_t{c.clean_start}).take();
}

std::string encode(const documents& d) {
  writer w(kind::documents);
  w.str16(d.node).num(d.epoch).num(static_cast<std::uint32_t>(d.entries.size()));
  for (const auto& e : d.entries) w.num(std::uint8_t{e.deleted}).str16(e.kind).str16(e.key).str32(e.body);
  return w.take();
}

std::string encode(const message& m) {
  writer w(kind::message);
  w.str16(m.node).num(m.request).num(m.order_key).num(m.qos).num(std::uint8_t{m.retain}).num(m.rule_hops);
  w.num(m.expiry_at_ms).str16(m.topic).str32(m.props).num(static_cast<std::uint16_t>(m.groups.size()));
  for (const auto& g : m.groups) w.str16(g);
  return w.raw(m.payload).take();
}

std::string encode(const ack& a) {
  return writer(kind::ack).str16(a.node).num(a.request).num(std::uint8_t{a.ok}).num(a.recipients).take();
}

std::optional<kind> kind_of(std::string_view frame) {
  if (frame.empty()) return std::nullopt;
  switch (static_cast<kind>(frame[0])) {
    case kind::hello:
    case kind::bye:
    case kind::inherited:
    case kind::interest:
    case kind::claim:
    case kind::documents:
    case kind::message:
    case kind::ack: return static_cast<kind>(frame[0]);
  }
  return std::nullopt;
}

std::optional<hello> decode_hello(std::string_view frame) {
  reader r(frame, kind::hello);
  hello h{r.str16(), r.num<std::uint64_t>()};
  if (!r.done() || h.node.empty()) return std::nullopt;
  return h;
}

std::optional<bye> decode_bye(std::string_view frame) {
  reader r(frame, kind::bye);
  bye b{r.str16(), r.num<std::uint64_t>()};
  if (!r.done() || b.node.empty()) return std::nullopt;
  return b;
}

std::optional<inherited> decode_inherited(std::string_view frame) {
  reader r(frame, kind::inherited);
  inherited t{r.str16(), r.num<std::uint64_t>(), r.str16()};
  if (!r.done() || t.node.empty() || t.of.empty()) return std::nullopt;
  return t;
}

std::optional<interest> decode_interest(std::string_view frame) {
  reader r(frame, kind::interest);
  interest i;
  i.node = r.str16();
  i.epoch = r.num<std::uint64_t>();
  i.request = r.num<std::uint64_t>();
  auto flags = r.num<std::uint8_t>();
  if (flags > 3) return std::nullopt;
  i.reset = flags & 1;
  i.want_reply = flags & 2;
  auto n = r.num<std::uint32_t>();
  // Each change takes at least 3 bytes: a count beyond what the frame holds is a lie.
  if (n > frame.size() / 3) return std::nullopt;
  i.changes.reserve(n);
  for (std::uint32_t k = 0; k < n; ++k) {
    bool added = r.flag();
    i.changes.emplace_back(r.str16(), added);
  }
  if (!r.done() || i.node.empty()) return std::nullopt;
  return i;
}

std::optional<claim> decode_claim(std::string_view frame) {
  reader r(frame, kind::claim);
  claim c;
  c.node = r.str16();
  c.epoch = r.num<std::uint64_t>();
  c.request = r.num<std::uint64_t>();
  c.client_id = r.str16();
  c.clean_start = r.flag();
  if (!r.done() || c.node.empty() || !c.request) return std::nullopt;
  return c;
}

std::optional<documents> decode_documents(std::string_view frame) {
  reader r(frame, kind::documents);
  documents d;
  d.node = r.str16();
  d.epoch = r.num<std::uint64_t>();
  auto n = r.num<std::uint32_t>();
  if (n > frame.size() / 9) return std::nullopt;  // each entry takes at least 9 bytes
  d.entries.reserve(n);
  for (std::uint32_t k = 0; k < n; ++k) {
    documents::entry e;
    e.deleted = r.flag();
    e.kind = r.str16();
    e.key = r.str16();
    e.body = r.str32();
    d.entries.push_back(std::move(e));
  }
  if (!r.done() || d.node.empty()) return std::nullopt;
  return d;
}

std::optional<message> decode_message(std::string_view frame) {
  reader r(frame, kind::message);
  message m;
  m.node = r.str16();
  m.request = r.num<std::uint64_t>();
  m.order_key = r.num<std::uint64_t>();
  m.qos = r.num<std::uint8_t>();
  m.retain = r.flag();
  m.rule_hops = r.num<std::uint8_t>();
  m.expiry_at_ms = r.num<std::int64_t>();
  m.topic = r.str16();
  m.props = r.str32();
  auto n = r.num<std::uint16_t>();
  if (n > frame.size() / 2) return std::nullopt;
  for (std::uint16_t k = 0; k < n; ++k) m.groups.push_back(r.str16());
  m.payload = r.rest();
  if (!r.done() || m.node.empty() || m.qos > 2 || m.topic.empty()) return std::nullopt;
  return m;
}

std::optional<ack> decode_ack(std::string_view frame) {
  reader r(frame, kind::ack);
  ack a{r.str16(), r.num<std::uint64_t>(), r.flag(), r.num<std::uint32_t>()};
  if (!r.done() || a.node.empty()) return std::nullopt;
  return a;
}

}  // namespace fleetcore::cluster::wire
