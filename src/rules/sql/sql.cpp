#include "rules/sql/sql.hpp"

#include "rules/sql/evaluator.hpp"
#include "rules/sql/parser.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>

namespace fleetcore::rules::sql {

std::optional<sql_version> parse_version(std::string_view text) {
  if (text == "2015-10-08") return sql_version::v2015_10_08;
  if (text == "2016-03-23") return sql_version::v2016_03_23;
  if (text == "beta") return sql_version::beta;
  return std::nullopt;
}

std::string_view to_string(sql_version v) {
  switch (v) {
    case sql_version::v2015_10_08: return "2015-10-08";
    case sql_version::v2016_03_23: return "2016-03-23";
    case sql_version::beta: return "beta";
  }
  return "2015-10-08";
}

namespace {

// Per-evaluation scratch: payload tree and intermediate values live in a stack buffer first, then in
// blocks the monotonic resource takes from the heap; all released at once when the evaluation ends.
constexpr std::size_t arena_bytes = 4096;

struct prepared {
  explicit prepared(unsigned char* buf) : mr(buf, arena_bytes), sp(&mr), payload(sp) {}
  boost::json::monotonic_resource mr;
  boost::json::storage_ptr sp;
  boost::json::value payload;  // on the arena: the parsed tree is moved in, not copied to the heap
  std::size_t budget = detail::evaluation_budget;
};

detail::eval_ctx make_ctx(const message_context& msg, sql_version v, bool uses_payload, prepared& p,
                          std::vector<std::string>* errors) {
  detail::eval_ctx ctx;
  ctx.budget = &p.budget;
  ctx.msg = &msg;
  ctx.ver = v;
  ctx.sp = p.sp;
  ctx.errors = errors;
  if (uses_payload && msg.payload_parsed) {
    ctx.doc = msg.parsed_payload;
  } else if (uses_payload && detail::parse_payload(msg.payload, p.sp, p.payload)) {
    ctx.doc = &p.payload;
  }
  return ctx;
}

}  // namespace

std::optional<boost::json::value> parse_payload(std::string_view payload) {
  boost::json::value v;
  if (!detail::parse_payload(payload, {}, v)) return std::nullopt;
  return v;
}

bool parse_payload(std::string_view payload, const boost::json::storage_ptr& sp, boost::json::value& out) {
  return detail::parse_payload(payload, sp, out);
}

parse_result<statement> statement::parse(std::string_view sql, sql_version v) {
  auto r = detail::parse_statement(sql, v);
  if (!r) return r.error();
  return statement(std::move(r).value());
}

const std::string& statement::topic_filter() const { return c_->topic_filter; }
sql_version statement::version() const { return c_->version; }
bool statement::reads_services() const { return c_->reads_services; }
bool statement::uses_payload() const { return c_->uses_payload; }
bool statement::simple_where() const { return c_->simple_where; }
std::string_view statement::where_field() const {
  return c_->simple_where ? std::string_view(c_->select.where->args[0]->name) : std::string_view();
}
std::string statement::where_key() const {
  if (!c_->simple_where) return {};
  const detail::node& w = *c_->select.where;
  // serialize() tells the literal's kinds apart where comparisons do (5 and 5.0 convert alike anyway).
  std::string key = std::to_string(static_cast<int>(c_->version)) + '\x1f' + std::to_string(static_cast<int>(w.kind)) +
                    '\x1f' + w.args[0]->name + '\x1f';
  key += boost::json::serialize(w.args[1]->literal);
  return key;
}
bool statement::where_rejects(const payload_fields* fields) const {
  return where_rejects(fields, fields && c_->simple_where ? fields->find(c_->select.where->args[0]->name) : nullptr);
}
bool statement::where_rejects(const payload_fields* fields, const payload_fields::member* m) const {
  if (!c_->simple_where) return false;
  if (!fields || !fields->is_object() || !m) return true;  // the field is Undefined: so is the comparison
  if (m->complex) return false;  // an object or array: the evaluator decides, over the document
  return !detail::compare_holds(*c_, m->value);
}
const std::string& statement::text() const { return c_->text; }

evaluation statement::evaluate(const message_context& msg) const {
  evaluation out;
  alignas(std::max_align_t) unsigned char buf[arena_bytes];
  prepared p(buf);
  // Boost.JSON allocates through the arena and may throw std::bad_alloc only; nothing else throws here.
  detail::eval_ctx ctx = make_ctx(msg, c_->version, c_->uses_payload, p, &out.errors);
  if (!detail::where_holds(ctx, c_->select.where.get())) return out;
  out.matched = true;
  detail::write_select(ctx, c_->select, out);
  return out;
}

parse_result<substitution_template> substitution_template::parse(std::string_view text, sql_version v) {
  auto r = detail::parse_template(text, v);
  if (!r) return r.error();
  return substitution_template(std::move(r).value());
}

bool substitution_template::is_constant() const { return c_->constant; }

std::string substitution_template::render(const message_context& msg, std::vector<std::string>* errors) const {
  std::string out;
  if (c_->constant) {
    for (const auto& part : c_->parts) out += part.text;
    return out;
  }
  alignas(std::max_align_t) unsigned char buf[arena_bytes];
  prepared p(buf);
  detail::eval_ctx ctx = make_ctx(msg, c_->version, c_->uses_payload, p, errors);
  for (const auto& part : c_->parts) {
    if (!part.expr) {
      out += part.text;
      continue;
    }
    detail::val v = detail::eval(ctx, *part.expr);
    if (v.undefined() || v.j().is_null()) continue;
    if (v.j().is_string()) out += std::string_view(v.j().get_string());
    else detail::write_json(out, v.j(), ctx.ver);
  }
  return out;
}

}  // namespace fleetcore::rules::sql
