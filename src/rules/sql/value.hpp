#pragma once
// The SQL engine's values: a JSON value (borrowed from the payload or the compiled tree, or owned in the
// evaluation's arena) or Undefined. Int is a JSON int64 (or uint64), Decimal a JSON double.
// The conversions are the tables of iot-sql-data-types.md.
#include "rules/sql/sql.hpp"

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fleetcore::rules::sql::detail {

namespace json = boost::json;

enum class type : std::uint8_t { undefined, null, boolean, integer, decimal, string, array, object };

/// One SQL value. Borrowed values point into data that outlives the evaluation (the parsed payload,
/// the compiled tree); owned values live in the evaluation's arena through their storage_ptr.
class val {
 public:
  val() = default;
  explicit val(json::value&& v) noexcept : own_(std::move(v)), defined_(true) {}
  static val borrow(const json::value& v) noexcept {
    val r;
    r.ref_ = &v;
    r.defined_ = true;
    return r;
  }
  bool undefined() const noexcept { return !defined_; }
  bool borrowed() const noexcept { return ref_ != nullptr; }
  /// Precondition: !undefined().
  const json::value& j() const noexcept { return ref_ ? *ref_ : *own_; }
  type kind() const noexcept;

 private:
  const json::value* ref_ = nullptr;
  std::optional<json::value> own_;  // engaged only when owned: borrowed and Undefined values build none
  bool defined_ = false;
};

/// A number as the operators see it: Int or Decimal.
struct number {
  bool is_int = false;
  std::int64_t i = 0;
  double d = 0;
  double as_double() const noexcept { return is_int ? static_cast<double>(i) : d; }
};

/// Parses a string matching ^-?\d+(\.\d+)?((?i)E-?\d+)?$ (the only strings AWS converts to numbers).
std::optional<double> parse_numeric_string(std::string_view s) noexcept;

/// Int or Decimal as they are; String by the numeric regex (as Decimal); anything else nullopt.
std::optional<number> to_number(const val& v) noexcept;
/// The "to Decimal" conversion (Null is treated as a failed conversion: every caller then yields Undefined).
std::optional<double> to_decimal(const val& v) noexcept;
/// Int, Decimal (floored, the "rounded down" of the function tables), String via Decimal (floored).
std::optional<std::int64_t> to_int_floor(const val& v) noexcept;
/// The "to Boolean" conversion: Boolean, or "true"/"false" in any case.
std::optional<bool> to_boolean(const val& v) noexcept;
/// The "to String" conversion: a String's own text (a view into `v`), or the text of Int, Decimal,
/// Boolean, Array, Object written into `scratch` (the returned view then points into it). Null and
/// Undefined: nullopt.
std::optional<std::string_view> to_string_view(const val& v, std::string& scratch, sql_version ver);

/// Appends `v` as JSON text. Decimals print as the shortest round-trip text; under 2015-10-08 a whole
/// Decimal keeps ".0".
void write_json(std::string& out, const json::value& v, sql_version ver);
void write_decimal(std::string& out, double d, sql_version ver);
void write_json_string(std::string& out, std::string_view s);

/// `=` of iot-sql-operators.md: Int and Decimal compare as numbers, Objects ignore key order, other
/// mismatched types are unequal. Neither side may be Undefined.
bool sql_equal(const json::value& a, const json::value& b) noexcept;

inline bool is_int(const json::value& v) noexcept { return v.is_int64() || v.is_uint64(); }
inline bool is_number(const json::value& v) noexcept { return v.is_int64() || v.is_uint64() || v.is_double(); }
inline std::int64_t int_of(const json::value& v) noexcept {
  return v.is_int64() ? v.get_int64() : static_cast<std::int64_t>(v.get_uint64());
}

}  // namespace fleetcore::rules::sql::detail
