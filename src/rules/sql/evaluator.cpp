#include "rules/sql/evaluator.hpp"

#include <boost/json/parser.hpp>

#include <cmath>

namespace fleetcore::rules::sql::detail {

namespace {

/// A value found inside `base`: borrowed when base is, else copied into the arena (base dies first).
/// 2016-03-23 reads a whole Decimal as an Int.
val child_of(const eval_ctx& ctx, const val& base, const json::value& child) {
  if (!ctx.v1() && child.is_double()) {
    const double d = child.get_double();
    if (d == std::floor(d) && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18)
      return ctx.integer(static_cast<std::int64_t>(d));
  }
  return base.borrowed() ? val::borrow(child) : ctx.copy(child);
}

val compare(const eval_ctx& ctx, op k, const val& a, const val& b) {
  if (a.undefined() || b.undefined()) return {};
  if (k == op::eq || k == op::ne) {
    const bool eq = sql_equal(a.j(), b.j());
    return ctx.boolean(k == op::eq ? eq : !eq);
  }
  auto l = to_number(a);
  auto r = to_number(b);
  if (!l || !r) return {};
  int c;
  if (l->is_int && r->is_int) {
    c = l->i < r->i ? -1 : l->i > r->i ? 1 : 0;
  } else {
    const double x = l->as_double(), y = r->as_double();
    c = x < y ? -1 : x > y ? 1 : 0;
  }
  switch (k) {
    case op::lt: return ctx.boolean(c < 0);
    case op::le: return ctx.boolean(c <= 0);
    case op::gt: return ctx.boolean(c > 0);
    default: return ctx.boolean(c >= 0);
  }
}

void set_path(const eval_ctx& ctx, json::object& out, const std::vector<std::string>& path, const json::value& v) {
  json::object* o = &out;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    json::value& next = (*o)[path[i]];
    if (!next.is_object()) next = json::object(ctx.sp);
    o = &next.get_object();
  }
  (*o)[path.back()] = v;
}

/// The object SELECT items make for the current document (generic path: `*`, dotted aliases, repeats).
json::object build_object(const eval_ctx& ctx, const select_clause& s) {
  json::object out(ctx.sp);
  for (const auto& item : s.items) {
    if (!item.expr) {
      if (ctx.doc && ctx.doc->is_object())
        for (const auto& kv : ctx.doc->get_object()) out[kv.key()] = kv.value();
      continue;
    }
    val v = eval(ctx, *item.expr);
    if (v.undefined()) continue;
    set_path(ctx, out, item.path, v.j());
  }
  return out;
}

val nested_select(const eval_ctx& ctx, const select_clause& s) {
  val from = eval(ctx, *s.from);
  if (from.undefined()) return {};
  auto one = [&](const json::value& doc, json::array* into) -> val {
    eval_ctx sub = ctx;
    sub.doc = &doc;
    if (!where_holds(sub, s.where.get())) return {};
    if (s.value) {
      val v = s.items[0].expr ? eval(sub, *s.items[0].expr) : val::borrow(doc);
      if (v.undefined()) return {};
      if (into) {
        into->push_back(v.j());
        return {};
      }
      return ctx.copy(v.j());
    }
    json::object o = build_object(sub, s);
    if (into) {
      into->push_back(json::value(std::move(o)));
      return {};
    }
    return val(json::value(std::move(o)));
  };
  const auto& f = from.j();
  if (f.is_array()) {
    json::array out(ctx.sp);
    for (const auto& e : f.get_array()) one(e, &out);
    return val(json::value(std::move(out)));
  }
  if (f.is_object()) return one(f, nullptr);
  return {};
}

}  // namespace

val arith(const eval_ctx& ctx, op k, const val& a, const val& b) {
  if (a.undefined() || b.undefined()) return {};
  if (k == op::add) {
    const auto& x = a.j();
    const auto& y = b.j();
    if (x.is_string() || y.is_string()) {
      std::string s1, s2;
      auto l = to_string_view(a, s1, ctx.ver);
      auto r = to_string_view(b, s2, ctx.ver);
      if (!l || !r) return {};
      json::string out(ctx.sp);
      out.reserve(l->size() + r->size());
      out.append(*l);
      out.append(*r);
      return val(json::value(std::move(out)));
    }
    if (!is_number(x) || !is_number(y)) return {};
  }
  auto l = to_number(a);
  auto r = to_number(b);
  if (!l || !r) return {};
  if (l->is_int && r->is_int) {
    std::int64_t res = 0;
    switch (k) {
      case op::add:
        if (!__builtin_add_overflow(l->i, r->i, &res)) return ctx.integer(res);
        break;
      case op::sub:
        if (!__builtin_sub_overflow(l->i, r->i, &res)) return ctx.integer(res);
        break;
      case op::mul:
        if (!__builtin_mul_overflow(l->i, r->i, &res)) return ctx.integer(res);
        break;
      case op::div:
        if (r->i == 0) return {};
        if (l->i == INT64_MIN && r->i == -1) break;
        return ctx.integer(l->i / r->i);
      default:  // mod
        if (r->i == 0) return {};
        if (r->i == -1) return ctx.integer(0);
        return ctx.integer(l->i % r->i);
    }
  }
  const double x = l->as_double(), y = r->as_double();
  switch (k) {
    case op::add: return ctx.decimal(x + y);
    case op::sub: return ctx.decimal(x - y);
    case op::mul: return ctx.decimal(x * y);
    case op::div: return y == 0 ? val{} : ctx.decimal(x / y);
    default: return y == 0 ? val{} : ctx.decimal(std::fmod(x, y));
  }
}

val eval(const eval_ctx& ctx, const node& n) {
  if (!ctx.spend(1)) return {};
  switch (n.kind) {
    case op::literal: return val::borrow(n.literal);
    case op::field: {
      if (!ctx.doc || !ctx.doc->is_object()) return {};
      const json::value* v = ctx.doc->get_object().if_contains(n.name);
      if (!v) return {};
      return child_of(ctx, val::borrow(*ctx.doc), *v);
    }
    case op::star:
      if (ctx.doc) return val::borrow(*ctx.doc);
      return ctx.string(ctx.msg->payload);
    case op::member: {
      val base = eval(ctx, *n.args[0]);
      if (base.undefined() || !base.j().is_object()) return {};
      const json::value* v = base.j().get_object().if_contains(n.name);
      if (!v) return {};
      return child_of(ctx, base, *v);
    }
    case op::index: {
      val base = eval(ctx, *n.args[0]);
      if (base.undefined() || !base.j().is_array()) return {};
      auto i = to_int_standard(eval(ctx, *n.args[1]));
      const auto& arr = base.j().get_array();
      if (!i || *i < 0 || static_cast<std::uint64_t>(*i) >= arr.size()) return {};
      return child_of(ctx, base, arr[static_cast<std::size_t>(*i)]);
    }
    case op::negate: {
      auto x = to_number(eval(ctx, *n.args[0]));
      if (!x) return {};
      if (x->is_int && x->i != INT64_MIN) return ctx.integer(-x->i);
      return ctx.decimal(-x->as_double());
    }
    case op::logical_not: {
      auto b = to_boolean(eval(ctx, *n.args[0]));
      return b ? ctx.boolean(!*b) : val{};
    }
    case op::logical_and:
    case op::logical_or: {
      auto l = to_boolean(eval(ctx, *n.args[0]));
      auto r = to_boolean(eval(ctx, *n.args[1]));
      if (!l || !r) return {};
      return ctx.boolean(n.kind == op::logical_and ? (*l && *r) : (*l || *r));
    }
    case op::eq:
    case op::ne:
    case op::lt:
    case op::le:
    case op::gt:
    case op::ge: return compare(ctx, n.kind, eval(ctx, *n.args[0]), eval(ctx, *n.args[1]));
    case op::add:
    case op::sub:
    case op::mul:
    case op::div:
    case op::mod: return arith(ctx, n.kind, eval(ctx, *n.args[0]), eval(ctx, *n.args[1]));
    case op::call: {
      arg_list args;
      for (const auto& a : n.args) args.push_back(eval(ctx, *a));
      return call_function(ctx, n, args);
    }
    case op::cast: return cast_value(ctx, eval(ctx, *n.args[0]), n.cast_to);
    case op::case_of: {
      const std::size_t pairs_end = n.args.size() - (n.has_else ? 1 : 0);
      if (!n.args[0]) {
        for (std::size_t i = 1; i + 1 < pairs_end; i += 2) {
          auto c = to_boolean(eval(ctx, *n.args[i]));
          if (c && *c) return eval(ctx, *n.args[i + 1]);
        }
      } else {
        val v = eval(ctx, *n.args[0]);
        if (v.undefined()) return {};
        for (std::size_t i = 1; i + 1 < pairs_end; i += 2) {
          val t = eval(ctx, *n.args[i]);
          if (!t.undefined() && sql_equal(v.j(), t.j())) return eval(ctx, *n.args[i + 1]);
        }
      }
      if (n.has_else) return eval(ctx, *n.args.back());
      return {};
    }
    case op::object_lit: {
      json::object o(ctx.sp);
      for (std::size_t i = 0; i < n.args.size(); ++i) {
        val v = eval(ctx, *n.args[i]);
        if (!v.undefined()) o[n.keys[i]] = v.j();
      }
      return val(json::value(std::move(o)));
    }
    case op::array_lit: {
      json::array a(ctx.sp);
      for (const auto& e : n.args) {
        val v = eval(ctx, *e);
        if (!v.undefined()) a.push_back(v.j());
      }
      return val(json::value(std::move(a)));
    }
    case op::select: return nested_select(ctx, *n.select);
  }
  return {};
}

bool where_holds(const eval_ctx& ctx, const node* where) {
  if (!where) return true;
  auto b = to_boolean(eval(ctx, *where));
  return b && *b;
}

bool compare_holds(const compiled_statement& c, const json::value& v) {
  const node& w = *c.select.where;
  const json::value& literal = w.args[1]->literal;
  if (v.is_int64() && literal.is_int64()) {  // the common case, decided as compare() would, directly
    const std::int64_t a = v.get_int64(), b = literal.get_int64();
    switch (w.kind) {
      case op::eq: return a == b;
      case op::ne: return a != b;
      case op::lt: return a < b;
      case op::le: return a <= b;
      case op::gt: return a > b;
      default: return a >= b;
    }
  }
  eval_ctx ctx;  // comparisons need no arena: their results are borrowed constants
  ctx.ver = c.version;
  const val field = child_of(ctx, val::borrow(v), v);
  auto b = to_boolean(compare(ctx, w.kind, field, val::borrow(w.args[1]->literal)));
  return b && *b;
}

void write_select(const eval_ctx& ctx, const select_clause& s, evaluation& out) {
  std::string& p = out.payload;
  if (s.value) {
    val v = s.items[0].expr ? eval(ctx, *s.items[0].expr) : val{};
    if (!s.items[0].expr) {  // SELECT VALUE *: the payload as it came
      p.assign(ctx.msg->payload);
      out.is_json = ctx.doc != nullptr;
      return;
    }
    if (v.undefined()) return;
    if (ctx.v1() && v.j().is_array()) {
      ctx.error("SELECT VALUE of an Array requires SQL version 2016-03-23");
      return;
    }
    write_json(p, v.j(), ctx.ver);
    out.is_json = true;
    return;
  }
  if (s.items.size() == 1 && !s.items[0].expr) {  // SELECT *
    if (ctx.doc && ctx.doc->is_object()) {
      write_json(p, *ctx.doc, ctx.ver);
    } else {
      p.assign(ctx.msg->payload);
    }
    out.is_json = ctx.doc != nullptr;
    return;
  }
  out.is_json = true;
  if (s.flat) {
    p += '{';
    bool first = true;
    for (std::size_t i = 0; i < s.items.size(); ++i) {
      val v = eval(ctx, *s.items[i].expr);
      if (v.undefined()) continue;
      if (!first) p += ',';
      first = false;
      p += s.flat_keys[i];
      write_json(p, v.j(), ctx.ver);
    }
    p += '}';
    return;
  }
  json::object o = build_object(ctx, s);
  write_json(p, json::value(std::move(o)), ctx.ver);
}

bool parse_payload(std::string_view payload, const boost::json::storage_ptr& sp, boost::json::value& out) {
  // One parser per thread, reset per payload (constructing one is a good part of parsing a small one).
  thread_local json::parser parser = [] {
    json::parse_options options;
    options.max_depth = 256;  // Boost.JSON's default (32) would turn deep but valid payloads into "non-JSON"
    return json::parser(json::storage_ptr(), options);
  }();
  parser.reset(sp);
  boost::system::error_code ec;
  parser.write(payload.data(), payload.size(), ec);
  if (ec) return false;
  out = parser.release();  // a move when `out` uses `sp` (the callers' arenas), a copy otherwise
  return true;
}

}  // namespace fleetcore::rules::sql::detail
