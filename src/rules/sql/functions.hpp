#pragma once
// The function library of iot-sql-functions.md: a name table for the parser, and the implementations.
#include "rules/sql/ast.hpp"
#include "rules/sql/value.hpp"

#include <boost/container/small_vector.hpp>
#include <boost/json/storage_ptr.hpp>

#include <string_view>
#include <vector>

namespace fleetcore::rules::sql::detail {

struct function_info {
  std::string_view name;  // lower case; calls match case-insensitively
  fn id;
  std::uint8_t min_args;
  std::uint8_t max_args;  // 255: any number
  bool since_2016;        // "Supported by SQL version 2016-03-23 and later"
};

/// The function named `lower_name` (already lower-cased), or null.
const function_info* find_function(std::string_view lower_name) noexcept;

/// What one evaluation carries: the message, the current document, the arena, the error sink.
struct eval_ctx {
  struct constant_values {
    const json::value yes = json::value(true), no = json::value(false), null = json::value(nullptr);
  };
  static const constant_values& constants() noexcept {
    static const constant_values c;
    return c;
  }

  const message_context* msg = nullptr;
  sql_version ver = sql_version::v2015_10_08;
  boost::json::storage_ptr sp;
  const boost::json::value* doc = nullptr;  // current document (null: payload is not JSON)
  std::vector<std::string>* errors = nullptr;
  /// Expression evaluations left for this message (shared by nested contexts): a statement whose
  /// work multiplies (nested SELECTs over arrays inside nested SELECTs) stops at the budget.
  std::size_t* budget = nullptr;

  bool v1() const noexcept { return ver == sql_version::v2015_10_08; }
  void error(std::string text) const {
    if (errors) errors->push_back(std::move(text));
  }
  /// Takes `n` units from the budget; false once it is spent (the first time, with an error).
  bool spend(std::size_t n) const {
    if (!budget) return true;
    if (*budget == 0) return false;
    if (n < *budget) {
      *budget -= n;
      return true;
    }
    *budget = 0;
    error("evaluation stopped: the statement exceeded its budget of evaluations and bytes");
    return false;
  }
  val integer(std::int64_t i) const { return val(json::value(i, sp)); }
  /// A Decimal result: non-finite -> Undefined; 2016-03-23 turns whole numbers into Ints.
  val decimal(double d) const;
  /// Booleans and Null are borrowed constants: the commonest results (every comparison) build no value.
  val boolean(bool b) const { return val::borrow(b ? constants().yes : constants().no); }
  val string(std::string_view s) const {
    spend(s.size() / 16);  // strings are charged too: a budget of 1 M evaluations is ~16 MB of text
    return val(json::value(json::string(s, sp)));
  }
  val null() const { return val::borrow(constants().null); }
  /// `v` itself, or an owned copy of it in the arena.
  val copy(const json::value& v) const { return val(json::value(v, sp)); }
};

using arg_list = boost::container::small_vector<val, 4>;

/// Evaluates function call `n` (kind op::call) with its arguments already evaluated.
val call_function(const eval_ctx& ctx, const node& n, arg_list& args);

/// The arithmetic operators (+ - * / %) of iot-sql-operators.md; `k` is op::add ... op::mod.
val arith(const eval_ctx& ctx, op k, const val& a, const val& b);

/// The standard "to Int" conversion (get's index, array indexing): Decimal rounded to nearest,
/// String truncated; nullopt for anything else or out of range.
std::optional<std::int64_t> to_int_standard(const val& v);

/// cast(v AS t).
val cast_value(const eval_ctx& ctx, const val& v, cast_type t);


}  // namespace fleetcore::rules::sql::detail
