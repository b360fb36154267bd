#pragma once
// Text to compiled tree: a hand-written lexer and recursive-descent parser for AWS IoT SQL.
#include "rules/sql/ast.hpp"

#include <memory>
#include <string_view>

namespace fleetcore::rules::sql::detail {

/// Parses a whole statement. Never throws.
parse_result<std::shared_ptr<compiled_statement>> parse_statement(std::string_view sql, sql_version v);

/// Parses a substitution template (literal text with `${expr}` parts). Never throws.
parse_result<std::shared_ptr<compiled_template>> parse_template(std::string_view text, sql_version v);

}  // namespace fleetcore::rules::sql::detail
