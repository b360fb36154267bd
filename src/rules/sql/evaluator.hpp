#pragma once
// Evaluation of the compiled tree against one message.
#include "rules/sql/ast.hpp"
#include "rules/sql/functions.hpp"

#include <string>

namespace fleetcore::rules::sql::detail {

/// Expression evaluations allowed per message (each 16 bytes of string made costs one more) before the
/// evaluation gives up: everything evaluated after that is Undefined, and one error is reported.
inline constexpr std::size_t evaluation_budget = 1'000'000;

/// The value of expression `n` in `ctx`.
val eval(const eval_ctx& ctx, const node& n);

/// WHERE: true only when `where` is null or yields Boolean true (or the string "true").
bool where_holds(const eval_ctx& ctx, const node* where);
/// For a statement with simple_where: whether its comparison holds for the field's value `v`.
bool compare_holds(const compiled_statement& c, const boost::json::value& v);

/// Writes the outgoing payload of top-level SELECT `s` (WHERE already held) into `out`.
void write_select(const eval_ctx& ctx, const select_clause& s, evaluation& out);

/// Parses a message payload into the arena; null when it is not JSON.
bool parse_payload(std::string_view payload, const boost::json::storage_ptr& sp, boost::json::value& out);

}  // namespace fleetcore::rules::sql::detail
