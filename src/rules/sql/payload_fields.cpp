// The top-level members of a payload read by Boost.JSON's SAX parser, without building the document:
// the same tokenizer, options and validation as parse_payload, so the two agree on what is JSON and on
// every scalar's value (duplicate keys: the last one, as the document keeps it).
#include "rules/sql/sql.hpp"

#include <boost/json/basic_parser_impl.hpp>

namespace fleetcore::rules::sql {

namespace json = boost::json;

struct payload_fields::scanner {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  payload_fields* out = nullptr;
  std::size_t depth = 0;
  bool want = false;  // the current top-level key is one of out->wanted_
  std::string key;    // a key in parts (escaped or split), accumulated
  std::string text;   // a wanted string value in parts

  bool top() const { return depth == 1; }
  bool wanted(std::string_view k) const {
    for (auto w : out->wanted_)
      if (w == k) return true;
    return false;
  }
  void set(json::value v, bool complex) {
    if (want) out->set(key_view, std::move(v), complex);
  }
  std::string_view key_view;  // the current top-level key (into the input, or into `key`)

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (depth == 0) out->object_ = true;
    else if (top()) set(json::value(out->sp_), true);
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    --depth;
    return true;
  }
  bool on_array_begin(json::error_code&) {
    if (top()) set(json::value(out->sp_), true);
    ++depth;
    return true;
  }
  bool on_array_end(std::size_t, json::error_code&) {
    --depth;
    return true;
  }
  // `n` counts the characters so far, this part included: n == size means a first part.
  bool on_key_part(json::string_view s, std::size_t n, json::error_code&) {
    if (top()) {
      if (n == s.size()) key.clear();
      key.append(s.data(), s.size());
    }
    return true;
  }
  bool on_key(json::string_view s, std::size_t n, json::error_code&) {
    if (top()) {
      if (n == s.size()) {
        key_view = std::string_view(s.data(), s.size());
      } else {
        key.append(s.data(), s.size());
        key_view = key;
      }
      want = wanted(key_view);
      if (want && key_view.data() != key.data()) {  // keep it: the input view may not outlive the value's event
        key.assign(key_view);
        key_view = key;
      }
    }
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t n, json::error_code&) {
    if (top() && want) {
      if (n == s.size()) text.clear();
      text.append(s.data(), s.size());
    }
    return true;
  }
  bool on_string(json::string_view s, std::size_t n, json::error_code&) {
    if (top() && want) {
      if (n != s.size()) {
        text.append(s.data(), s.size());
        set(json::value(json::string_view(text), out->sp_), false);
      } else {
        set(json::value(s, out->sp_), false);
      }
    }
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    if (top() && want) set(json::value(i, out->sp_), false);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    if (top() && want) set(json::value(u, out->sp_), false);
    return true;
  }
  bool on_double(double d, json::string_view, json::error_code&) {
    if (top() && want) set(json::value(d, out->sp_), false);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    if (top() && want) set(json::value(b, out->sp_), false);
    return true;
  }
  bool on_null(json::error_code&) {
    if (top() && want) set(json::value(nullptr, out->sp_), false);
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

payload_fields::payload_fields() : mr_(buf_, sizeof buf_), sp_(&mr_) {}

// Every value uses the arena's storage, so replacing one (a duplicate key) is a move, not a copy.
void payload_fields::set(std::string_view key, json::value v, bool complex) {
  for (auto& m : members_)
    if (m.key == key) {  // a duplicate key: the last value, as the parsed document keeps it
      m.value = std::move(v);
      m.complex = complex;
      return;
    }
  members_.push_back(member{std::string(key), std::move(v), complex});
}

namespace {
json::parse_options scan_options() {
  json::parse_options options;
  options.max_depth = 256;  // as parse_payload
  return options;
}
}  // namespace

bool payload_fields::scan(std::string_view payload, std::span<const std::string_view> wanted) {
  wanted_ = wanted;
  members_.clear();
  mr_.release();  // back to the inline buffer: the object may be reused for the next payload
  object_ = false;
  // One parser per thread, reset per payload (as parse_payload's).
  thread_local json::basic_parser<scanner> p(scan_options());
  p.reset();
  p.handler().out = this;
  p.handler().depth = 0;
  p.handler().want = false;
  json::error_code ec;
  const std::size_t n = p.write_some(false, payload.data(), payload.size(), ec);
  if (ec || n != payload.size()) {
    members_.clear();
    object_ = false;
    return false;
  }
  return true;
}

const payload_fields::member* payload_fields::find(std::string_view key) const noexcept {
  for (const auto& m : members_)
    if (m.key == key) return &m;
  return nullptr;
}

}  // namespace fleetcore::rules::sql
