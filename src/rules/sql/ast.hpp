#pragma once
// The compiled form of a statement: a tree of nodes built once by the parser, read-only afterwards.
#include "rules/sql/sql.hpp"

#include <boost/json/value.hpp>
#include <boost/regex.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fleetcore::rules::sql::detail {

enum class op : std::uint8_t {
  literal,      // literal
  field,        // name, looked up in the current document
  star,         // `*` as an expression: the current document (or raw payload)
  member,       // args[0].name
  index,        // args[0][args[1]]
  negate,       // -args[0]
  logical_not,  // NOT args[0]
  logical_and,
  logical_or,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  add,
  sub,
  mul,
  div,
  mod,
  call,         // fn(args...)
  cast,         // cast(args[0] AS cast_to)
  case_of,      // CASE args[0] WHEN args[1] THEN args[2] ... [ELSE last] END (args[0] null: searched CASE)
  object_lit,   // {keys[i]: args[i]}
  array_lit,    // [args...]
  select,       // (SELECT ... FROM args... WHERE ...)
};

enum class fn : std::uint8_t {
  abs, accountid, acos, asin, atan, atan2, aws_lambda, bitand_, bitor_, bitxor_, bitnot_, ceil, chr,
  clientid, concat, cos, cosh, decode, encode, endswith, exp, floor, get, get_dynamodb, get_secret,
  get_thing_shadow, indexof, isnull, isundefined, length, ln, log, lower, lpad, ltrim,
  machinelearning_predict, mod, nanvl, newuuid, numbytes, parse_time, power, principal, rand,
  regexp_matches, regexp_replace, regexp_substr, remainder, replace, rpad, round, rtrim, sign, sin, sinh,
  substring, sql_version, sqrt, startswith, tan, tanh, time_to_epoch, timestamp, topic, traceid,
  transform, trim, trunc, upper, md2, md5, sha1, sha224, sha256, sha384, sha512,
};

enum class cast_type : std::uint8_t { string, integer, decimal, double_, boolean };

struct node;
using node_ptr = std::unique_ptr<node>;

struct select_item {
  node_ptr expr;              // null for `*`
  std::vector<std::string> path;  // output name; several parts for a dotted alias
};

struct select_clause {
  bool value = false;         // SELECT VALUE
  std::vector<select_item> items;
  node_ptr from;              // nested SELECT only
  node_ptr where;
  /// Every item is a named expression with a distinct one-part name: output can be written directly.
  bool flat = false;
  std::vector<std::string> flat_keys;  // `"name":` pre-escaped, per item, when flat
};

struct node {
  op kind = op::literal;
  std::size_t offset = 0;
  boost::json::value literal;         // op::literal
  std::string name;                   // field / member / function name
  std::vector<node_ptr> args;
  std::vector<std::string> keys;      // object_lit
  fn function = fn::abs;              // op::call
  bool arity_ok = true;               // op::call: false -> always Undefined
  cast_type cast_to = cast_type::string;
  bool has_else = false;              // op::case_of
  std::unique_ptr<select_clause> select;
  std::shared_ptr<const boost::regex> regex;  // a literal regexp_* pattern compiled once (null: invalid)
  bool regex_literal = false;
};

struct compiled_statement {
  std::string text;
  sql_version version = sql_version::v2015_10_08;
  std::string topic_filter;
  select_clause select;
  bool uses_payload = false;  // reads fields, `*` or nested selects: the payload must be parsed
  bool reads_services = false;  // calls get_thing_shadow or get_secret (a call into another service)
  /// WHERE is `<top-level field> <comparison> <literal>`, the commonest filter: the rules engine
  /// rejects most messages from the payload's scanned fields (statement::where_rejects, compare_holds).
  bool simple_where = false;
};

struct template_part {
  std::string text;  // literal text (when expr is null)
  node_ptr expr;
};

struct compiled_template {
  sql_version version = sql_version::v2015_10_08;
  std::vector<template_part> parts;
  bool uses_payload = false;
  bool constant = true;
};

}  // namespace fleetcore::rules::sql::detail
