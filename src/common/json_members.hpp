#pragma once
// Typed members of a JSON object, as the AWS edge reads its input (AWS member names in, as the service
// models declare them): a member that is absent or of another type reads as absent, so each operation
// decides once whether that is an error or a default.
//
// Header-only over Boost.JSON: a module that includes it links Boost.JSON (fc_boost).
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace fleetcore::common {

/// The string member `key` of `in`; the view lives as long as `in` is unchanged.
inline std::optional<std::string_view> text_member(const boost::json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  if (!v || !v->is_string()) return std::nullopt;
  return std::string_view(v->get_string());
}

/// The integer member `key` of `in` (a JSON number without fraction or exponent that fits in 64 bits).
inline std::optional<std::int64_t> int_member(const boost::json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  if (!v || !v->is_int64()) return std::nullopt;
  return v->get_int64();
}

/// The number member `key` of `in`, integer or not.
inline std::optional<double> number_member(const boost::json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  if (!v || !(v->is_double() || v->is_int64() || v->is_uint64())) return std::nullopt;
  return v->to_number<double>();
}

/// The boolean member `key` of `in`.
inline std::optional<bool> bool_member(const boost::json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  if (!v || !v->is_bool()) return std::nullopt;
  return v->get_bool();
}

/// The object member `key` of `in`, or null; the pointer lives as long as `in` is unchanged.
inline const boost::json::object* object_member(const boost::json::object& in, std::string_view key) {
  auto* v = in.if_contains(key);
  return v && v->is_object() ? &v->get_object() : nullptr;
}

}  // namespace fleetcore::common
