#include "rules/sql/parser.hpp"

#include "rules/sql/functions.hpp"
#include "rules/sql/value.hpp"

#include <charconv>
#include <cmath>
#include <optional>
#include <unordered_set>

namespace fleetcore::rules::sql::detail {
namespace {

enum class tok {
  end, ident, number, string, comma, dot, lparen, rparen, lbracket, rbracket, lbrace, rbrace, colon,
  star, plus, minus, slash, percent, eq, ne, lt, le, gt, ge, invalid,
};

struct token {
  tok t = tok::end;
  std::size_t pos = 0;
  std::string_view text;  // as written
  std::string str;        // string literal, unescaped
  bool double_quoted = false;
};

bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$'; }
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

bool keyword_is(const token& t, std::string_view kw) {
  if (t.t != tok::ident || t.text.size() != kw.size()) return false;
  for (std::size_t i = 0; i < kw.size(); ++i) {
    char c = t.text[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != kw[i]) return false;
  }
  return true;
}

// Words that end an expression or start a clause: never a field name.
bool reserved(const token& t) {
  static constexpr std::string_view words[] = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "CASE",
                                               "WHEN", "THEN", "ELSE", "END", "AS"};
  for (auto w : words)
    if (keyword_is(t, w)) return true;
  return false;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr int max_depth = 100;

class parser {
 public:
  parser(std::string_view src, std::size_t start, sql_version v) : src_(src), pos_(start), ver_(v) { advance(); }

  bool failed() const { return error_.has_value(); }
  parse_error take_error() { return std::move(*error_); }
  bool uses_payload() const { return uses_payload_; }
  bool reads_services() const { return reads_services_; }
  const token& current() const { return cur_; }

  bool parse_statement(compiled_statement& out) {
    if (!keyword_is(cur_, "SELECT")) return fail_expecting("'SELECT'");
    advance();
    if (!parse_select_body(out.select)) return false;
    if (keyword_is(cur_, "FROM")) {
      advance();
      if (cur_.t != tok::string) return fail_expecting("a quoted topic filter");
      out.topic_filter = cur_.str;
      advance();
    }
    if (keyword_is(cur_, "WHERE")) {
      advance();
      out.select.where = parse_expr();
      if (!out.select.where) return false;
    }
    if (cur_.t != tok::end) return fail_extraneous();
    out.uses_payload = uses_payload_;
    out.reads_services = reads_services_;
    if (const node* w = out.select.where.get()) {
      const bool comparison = w->kind == op::eq || w->kind == op::ne || w->kind == op::lt || w->kind == op::le ||
                              w->kind == op::gt || w->kind == op::ge;
      out.simple_where = comparison && w->args.size() == 2 && w->args[0]->kind == op::field &&
                         w->args[1]->kind == op::literal;
    }
    return true;
  }

  node_ptr parse_expr() { return parse_or(); }

 private:
  // --- lexer ---
  void advance() {
    cur_ = token{};
    while (pos_ < src_.size() && (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n' || src_[pos_] == '\r'))
      ++pos_;
    cur_.pos = pos_;
    if (pos_ >= src_.size()) {
      cur_.t = tok::end;
      return;
    }
    const char c = src_[pos_];
    std::size_t start = pos_;
    auto single = [&](tok t, std::size_t len = 1) {
      cur_.t = t;
      pos_ += len;
      cur_.text = src_.substr(start, len);
    };
    if (ident_start(c)) {
      while (pos_ < src_.size() && ident_char(src_[pos_])) ++pos_;
      cur_.t = tok::ident;
      cur_.text = src_.substr(start, pos_ - start);
      return;
    }
    if (digit(c)) {
      while (pos_ < src_.size() && digit(src_[pos_])) ++pos_;
      if (pos_ + 1 < src_.size() && src_[pos_] == '.' && digit(src_[pos_ + 1])) {
        ++pos_;
        while (pos_ < src_.size() && digit(src_[pos_])) ++pos_;
      }
      if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        std::size_t p = pos_ + 1;
        if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
        if (p < src_.size() && digit(src_[p])) {
          pos_ = p;
          while (pos_ < src_.size() && digit(src_[pos_])) ++pos_;
        }
      }
      cur_.t = tok::number;
      cur_.text = src_.substr(start, pos_ - start);
      return;
    }
    if (c == '\'' || c == '"') {
      lex_string(c);
      return;
    }
    const char n = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    switch (c) {
      case ',': return single(tok::comma);
      case '.': return single(tok::dot);
      case '(': return single(tok::lparen);
      case ')': return single(tok::rparen);
      case '[': return single(tok::lbracket);
      case ']': return single(tok::rbracket);
      case '{': return single(tok::lbrace);
      case '}': return single(tok::rbrace);
      case ':': return single(tok::colon);
      case '*': return single(tok::star);
      case '+': return single(tok::plus);
      case '-': return single(tok::minus);
      case '/': return single(tok::slash);
      case '%': return single(tok::percent);
      case '=': return single(tok::eq);
      case '<':
        if (n == '>') return single(tok::ne, 2);
        if (n == '=') return single(tok::le, 2);
        return single(tok::lt);
      case '>':
        if (n == '=') return single(tok::ge, 2);
        return single(tok::gt);
      case '!':
        if (n == '=') return single(tok::ne, 2);
        break;
      default: break;
    }
    single(tok::invalid);
  }

  void lex_string(char quote) {
    std::size_t start = pos_;
    ++pos_;
    std::string s;
    while (true) {
      if (pos_ >= src_.size()) {
        cur_.t = tok::invalid;
        cur_.text = src_.substr(start, 1);
        pos_ = src_.size();
        return;
      }
      char c = src_[pos_];
      if (c == quote) {
        if (pos_ + 1 < src_.size() && src_[pos_ + 1] == quote) {  // SQL's doubled quote
          s += quote;
          pos_ += 2;
          continue;
        }
        ++pos_;
        break;
      }
      if (c == '\\' && pos_ + 1 < src_.size()) {
        char e = src_[pos_ + 1];
        pos_ += 2;
        switch (e) {
          case '\'': s += '\''; break;
          case '"': s += '"'; break;
          case '\\': s += '\\'; break;
          case '/': s += '/'; break;
          case 'n': s += '\n'; break;
          case 't': s += '\t'; break;
          case 'r': s += '\r'; break;
          case 'b': s += '\b'; break;
          case 'f': s += '\f'; break;
          case 'u': {
            std::uint32_t cp = 0;
            if (pos_ + 4 <= src_.size() &&
                std::from_chars(src_.data() + pos_, src_.data() + pos_ + 4, cp, 16).ptr == src_.data() + pos_ + 4) {
              append_utf8(s, cp);
              pos_ += 4;
            } else {
              s += "\\u";
            }
            break;
          }
          default:  // kept as written, so regular expressions such as '\d+' read naturally
            s += '\\';
            s += e;
        }
        continue;
      }
      s += c;
      ++pos_;
    }
    cur_.t = tok::string;
    cur_.text = src_.substr(start, pos_ - start);
    cur_.str = std::move(s);
    cur_.double_quoted = quote == '"';
  }

  // --- errors ---
  std::string where(std::size_t offset) const {
    std::size_t line = 1, col = 0;
    for (std::size_t i = 0; i < offset && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 0;
      } else {
        ++col;
      }
    }
    return "Line " + std::to_string(line) + ":" + std::to_string(col) + " ";
  }
  std::string shown() const { return cur_.t == tok::end ? "<EOF>" : "'" + std::string(cur_.text) + "'"; }
  bool fail_at(std::size_t offset, std::string message) {
    if (!error_) error_ = parse_error{where(offset) + std::move(message), offset};
    return false;
  }
  bool fail_expecting(std::string_view what) {
    if (cur_.t == tok::end) return fail_at(cur_.pos, "mismatched input <EOF> expecting " + std::string(what));
    return fail_at(cur_.pos, "mismatched input " + shown() + " expecting " + std::string(what));
  }
  bool fail_extraneous() { return fail_at(cur_.pos, "extraneous input " + shown() + " expecting <EOF>"); }
  bool expect(tok t, std::string_view what) {
    if (cur_.t != t) return fail_expecting(what);
    advance();
    return true;
  }
  bool need_2016(std::size_t offset, std::string_view feature) {
    if (ver_ != sql_version::v2015_10_08) return true;
    return fail_at(offset, std::string(feature) + " requires SQL version 2016-03-23");
  }

  // --- SELECT ---
  bool parse_select_body(select_clause& sel) {
    if (keyword_is(cur_, "VALUE")) {
      sel.value = true;
      advance();
    }
    do {
      if (sel.items.size() > 0) advance();  // the comma
      select_item item;
      if (cur_.t == tok::star) {
        advance();
        uses_payload_ = true;
      } else {
        item.expr = parse_expr();
        if (!item.expr) return false;
        if (keyword_is(cur_, "AS")) {
          advance();
          if (sel.value) return fail_at(cur_.pos, "SELECT VALUE does not take an alias");
          while (true) {
            if (cur_.t != tok::ident) return fail_expecting("an alias");
            item.path.emplace_back(cur_.text);
            advance();
            if (cur_.t != tok::dot) break;
            advance();
          }
        } else if (cur_.t == tok::ident && !reserved(cur_)) {
          return fail_at(cur_.pos, "extraneous input " + shown() + " expecting {',', 'AS', 'FROM', 'WHERE', <EOF>}");
        } else {
          item.path.push_back(default_name(*item.expr, sel.items.size()));
        }
      }
      sel.items.push_back(std::move(item));
    } while (cur_.t == tok::comma);
    if (sel.value && sel.items.size() != 1)
      return fail_at(cur_.pos, "SELECT VALUE takes exactly one expression");
    // The direct-output fast path: named expressions with distinct one-part names.
    std::unordered_set<std::string> names;
    sel.flat = !sel.value;
    for (auto& it : sel.items) {
      if (!it.expr || it.path.size() != 1 || !names.insert(it.path[0]).second) sel.flat = false;
    }
    if (sel.flat) {
      for (auto& it : sel.items) {
        std::string k;
        write_json_string(k, it.path[0]);
        k += ':';
        sel.flat_keys.push_back(std::move(k));
      }
    }
    return true;
  }

  static std::string default_name(const node& n, std::size_t position) {
    switch (n.kind) {
      case op::field:
      case op::member: return n.name;
      case op::call: return n.name;
      case op::cast: return "cast";
      case op::index: return default_name(*n.args[0], position);
      default: return "_" + std::to_string(position + 1);
    }
  }

  // --- expressions, lowest precedence first ---
  node_ptr make(op k, std::size_t offset) {
    auto n = std::make_unique<node>();
    n->kind = k;
    n->offset = offset;
    return n;
  }
  node_ptr binary(op k, std::size_t offset, node_ptr l, node_ptr r) {
    auto n = make(k, offset);
    n->args.push_back(std::move(l));
    n->args.push_back(std::move(r));
    return n;
  }

  struct depth_guard {
    explicit depth_guard(int& d) : d_(d) { ++d_; }
    ~depth_guard() { --d_; }
    int& d_;
  };
  bool too_deep() {
    if (depth_ <= max_depth) return false;
    fail_at(cur_.pos, "expression nested too deeply");
    return true;
  }

  node_ptr parse_or() {
    auto l = parse_and();
    while (l && keyword_is(cur_, "OR")) {
      std::size_t at = cur_.pos;
      advance();
      auto r = parse_and();
      if (!r) return nullptr;
      l = binary(op::logical_or, at, std::move(l), std::move(r));
    }
    return l;
  }
  node_ptr parse_and() {
    auto l = parse_not();
    while (l && keyword_is(cur_, "AND")) {
      std::size_t at = cur_.pos;
      advance();
      auto r = parse_not();
      if (!r) return nullptr;
      l = binary(op::logical_and, at, std::move(l), std::move(r));
    }
    return l;
  }
  node_ptr parse_not() {
    depth_guard g(depth_);
    if (too_deep()) return nullptr;
    if (keyword_is(cur_, "NOT")) {
      std::size_t at = cur_.pos;
      advance();
      auto e = parse_not();
      if (!e) return nullptr;
      auto n = make(op::logical_not, at);
      n->args.push_back(std::move(e));
      return n;
    }
    return parse_cmp();
  }
  node_ptr parse_cmp() {
    auto l = parse_add();
    if (!l) return nullptr;
    op k;
    switch (cur_.t) {
      case tok::eq: k = op::eq; break;
      case tok::ne: k = op::ne; break;
      case tok::lt: k = op::lt; break;
      case tok::le: k = op::le; break;
      case tok::gt: k = op::gt; break;
      case tok::ge: k = op::ge; break;
      default: return l;
    }
    std::size_t at = cur_.pos;
    advance();
    auto r = parse_add();
    if (!r) return nullptr;
    return binary(k, at, std::move(l), std::move(r));
  }
  node_ptr parse_add() {
    auto l = parse_mul();
    while (l && (cur_.t == tok::plus || cur_.t == tok::minus)) {
      op k = cur_.t == tok::plus ? op::add : op::sub;
      std::size_t at = cur_.pos;
      advance();
      auto r = parse_mul();
      if (!r) return nullptr;
      l = binary(k, at, std::move(l), std::move(r));
    }
    return l;
  }
  node_ptr parse_mul() {
    auto l = parse_unary();
    while (l && (cur_.t == tok::star || cur_.t == tok::slash || cur_.t == tok::percent)) {
      op k = cur_.t == tok::star ? op::mul : cur_.t == tok::slash ? op::div : op::mod;
      std::size_t at = cur_.pos;
      advance();
      auto r = parse_unary();
      if (!r) return nullptr;
      l = binary(k, at, std::move(l), std::move(r));
    }
    return l;
  }
  node_ptr parse_unary() {
    depth_guard g(depth_);
    if (too_deep()) return nullptr;
    if (cur_.t == tok::minus || cur_.t == tok::plus) {
      bool minus = cur_.t == tok::minus;
      std::size_t at = cur_.pos;
      advance();
      auto e = parse_unary();
      if (!e) return nullptr;
      if (!minus) return e;
      if (e->kind == op::literal && e->literal.is_int64() && e->literal.get_int64() != INT64_MIN) {
        e->literal = -e->literal.get_int64();
        return e;
      }
      if (e->kind == op::literal && e->literal.is_double()) {
        e->literal = -e->literal.get_double();
        return e;
      }
      auto n = make(op::negate, at);
      n->args.push_back(std::move(e));
      return n;
    }
    return parse_postfix();
  }
  node_ptr parse_postfix() {
    auto e = parse_primary();
    while (e) {
      if (cur_.t == tok::dot) {
        std::size_t at = cur_.pos;
        advance();
        if (cur_.t != tok::ident) {
          fail_expecting("a field name");
          return nullptr;
        }
        auto n = make(op::member, at);
        n->name = std::string(cur_.text);
        n->args.push_back(std::move(e));
        advance();
        e = std::move(n);
      } else if (cur_.t == tok::lbracket) {
        std::size_t at = cur_.pos;
        advance();
        auto i = parse_expr();
        if (!i || !expect(tok::rbracket, "']'")) return nullptr;
        e = binary(op::index, at, std::move(e), std::move(i));
      } else {
        break;
      }
    }
    return e;
  }

  node_ptr number_literal() {
    auto n = make(op::literal, cur_.pos);
    std::string_view t = cur_.text;
    bool integral = t.find_first_of(".eE") == std::string_view::npos;
    std::int64_t i = 0;
    if (integral && std::from_chars(t.data(), t.data() + t.size(), i).ec == std::errc()) {
      n->literal = i;
    } else {
      double d = 0;
      auto r = std::from_chars(t.data(), t.data() + t.size(), d);
      if (r.ec == std::errc::result_out_of_range) d = t.find("e-") != std::string_view::npos || t.find("E-") != std::string_view::npos ? 0.0 : HUGE_VAL;
      if (!std::isfinite(d)) {
        fail_at(cur_.pos, "number out of range " + shown());
        return nullptr;
      }
      if (ver_ != sql_version::v2015_10_08 && d == std::floor(d) && std::fabs(d) < 9.2e18)
        n->literal = static_cast<std::int64_t>(d);
      else
        n->literal = d;
    }
    advance();
    return n;
  }

  node_ptr parse_primary() {
    depth_guard g(depth_);
    if (too_deep()) return nullptr;
    std::size_t at = cur_.pos;
    switch (cur_.t) {
      case tok::number: return number_literal();
      case tok::string: {
        auto n = make(op::literal, at);
        n->literal = boost::json::string(cur_.str);
        advance();
        return n;
      }
      case tok::star: {
        advance();
        uses_payload_ = true;
        return make(op::star, at);
      }
      case tok::lparen: {
        advance();
        if (keyword_is(cur_, "SELECT")) return parse_nested_select(at);
        auto e = parse_expr();
        if (!e || !expect(tok::rparen, "')'")) return nullptr;
        return e;
      }
      case tok::lbrace: return parse_object(at);
      case tok::lbracket: return parse_array(at);
      case tok::ident: break;
      default:
        if (cur_.t == tok::end) fail_at(at, "mismatched input <EOF> expecting an expression");
        else fail_at(at, "no viable alternative at input " + shown());
        return nullptr;
    }
    if (keyword_is(cur_, "TRUE") || keyword_is(cur_, "FALSE")) {
      auto n = make(op::literal, at);
      n->literal = keyword_is(cur_, "TRUE");
      advance();
      return n;
    }
    if (keyword_is(cur_, "NULL")) {
      auto n = make(op::literal, at);
      advance();
      return n;
    }
    if (keyword_is(cur_, "CASE")) return parse_case(at);
    if (reserved(cur_)) {
      fail_at(at, "no viable alternative at input " + shown());
      return nullptr;
    }
    std::string name(cur_.text);
    advance();
    if (cur_.t == tok::lparen) return parse_call(at, std::move(name));
    auto n = make(op::field, at);
    n->name = std::move(name);
    uses_payload_ = true;
    return n;
  }

  node_ptr parse_nested_select(std::size_t at) {
    if (!need_2016(at, "A nested SELECT")) return nullptr;
    advance();  // SELECT
    auto n = make(op::select, at);
    n->select = std::make_unique<select_clause>();
    if (!parse_select_body(*n->select)) return nullptr;
    if (!keyword_is(cur_, "FROM")) {
      fail_expecting("'FROM'");
      return nullptr;
    }
    advance();
    n->select->from = parse_expr();
    if (!n->select->from) return nullptr;
    if (keyword_is(cur_, "WHERE")) {
      advance();
      n->select->where = parse_expr();
      if (!n->select->where) return nullptr;
    }
    if (!expect(tok::rparen, "')'")) return nullptr;
    uses_payload_ = true;
    return n;
  }

  node_ptr parse_object(std::size_t at) {
    if (!need_2016(at, "An object literal")) return nullptr;
    advance();
    auto n = make(op::object_lit, at);
    if (cur_.t != tok::rbrace) {
      while (true) {
        if (cur_.t != tok::string) {
          fail_expecting("a quoted key");
          return nullptr;
        }
        n->keys.push_back(cur_.str);
        advance();
        if (!expect(tok::colon, "':'")) return nullptr;
        auto v = parse_expr();
        if (!v) return nullptr;
        n->args.push_back(std::move(v));
        if (cur_.t != tok::comma) break;
        advance();
      }
    }
    if (!expect(tok::rbrace, "'}'")) return nullptr;
    return n;
  }

  node_ptr parse_array(std::size_t at) {
    if (!need_2016(at, "An array literal")) return nullptr;
    advance();
    auto n = make(op::array_lit, at);
    if (cur_.t != tok::rbracket) {
      while (true) {
        auto v = parse_expr();
        if (!v) return nullptr;
        n->args.push_back(std::move(v));
        if (cur_.t != tok::comma) break;
        advance();
      }
    }
    if (!expect(tok::rbracket, "']'")) return nullptr;
    return n;
  }

  node_ptr parse_case(std::size_t at) {
    advance();  // CASE
    auto n = make(op::case_of, at);
    if (keyword_is(cur_, "WHEN")) {
      n->args.push_back(nullptr);  // searched CASE: each WHEN is a condition
    } else {
      auto v = parse_expr();
      if (!v) return nullptr;
      n->args.push_back(std::move(v));
    }
    if (!keyword_is(cur_, "WHEN")) {
      fail_expecting("'WHEN'");
      return nullptr;
    }
    while (keyword_is(cur_, "WHEN")) {
      advance();
      auto t = parse_expr();
      if (!t) return nullptr;
      if (!keyword_is(cur_, "THEN")) {
        fail_expecting("'THEN'");
        return nullptr;
      }
      advance();
      auto r = parse_expr();
      if (!r) return nullptr;
      n->args.push_back(std::move(t));
      n->args.push_back(std::move(r));
    }
    if (keyword_is(cur_, "ELSE")) {
      advance();
      auto e = parse_expr();
      if (!e) return nullptr;
      n->args.push_back(std::move(e));
      n->has_else = true;
    }
    if (!keyword_is(cur_, "END")) {
      fail_expecting("'END'");
      return nullptr;
    }
    advance();
    return n;
  }

  node_ptr parse_call(std::size_t at, std::string name) {
    const std::string lname = lower(name);
    advance();  // (
    if (lname == "cast") return parse_cast(at);
    const function_info* info = find_function(lname);
    if (!info) {
      fail_at(at, "Undefined function: " + name);
      return nullptr;
    }
    if (info->since_2016 && !need_2016(at, "Function " + lname)) return nullptr;
    auto n = make(op::call, at);
    n->name = std::move(name);
    n->function = info->id;
    if (info->id == fn::get_thing_shadow || info->id == fn::get_secret) reads_services_ = true;
    if (cur_.t != tok::rparen) {
      while (true) {
        auto a = parse_expr();
        if (!a) return nullptr;
        n->args.push_back(std::move(a));
        if (cur_.t != tok::comma) break;
        advance();
      }
    }
    if (!expect(tok::rparen, "')'")) return nullptr;
    n->arity_ok = n->args.size() >= info->min_args && (info->max_args == 255 || n->args.size() <= info->max_args);
    if (n->arity_ok && n->args.size() >= 2 &&
        (info->id == fn::regexp_matches || info->id == fn::regexp_replace || info->id == fn::regexp_substr) &&
        n->args[1]->kind == op::literal && n->args[1]->literal.is_string()) {
      n->regex_literal = true;
      try {
        const auto& p = n->args[1]->literal.get_string();
        n->regex = std::make_shared<const boost::regex>(p.data(), p.data() + p.size(), boost::regex::perl);
      } catch (const std::exception&) {
        n->regex = nullptr;  // an invalid pattern: the call is Undefined, as AWS documents
      }
    }
    return n;
  }

  node_ptr parse_cast(std::size_t at) {
    auto n = make(op::cast, at);
    n->name = "cast";
    auto e = parse_expr();
    if (!e) return nullptr;
    n->args.push_back(std::move(e));
    if (!keyword_is(cur_, "AS")) {
      fail_expecting("'AS'");
      return nullptr;
    }
    advance();
    if (cur_.t != tok::ident) {
      fail_expecting("a type");
      return nullptr;
    }
    const std::string t = lower(cur_.text);
    if (t == "string" || t == "nvarchar" || t == "text" || t == "ntext" || t == "varchar") {
      n->cast_to = cast_type::string;
    } else if (t == "int" || t == "integer") {
      n->cast_to = cast_type::integer;
    } else if (t == "double") {
      n->cast_to = cast_type::double_;
    } else if (t == "decimal" || t == "bool" || t == "boolean") {
      if (!need_2016(cur_.pos, "cast to " + std::string(cur_.text))) return nullptr;
      n->cast_to = t == "decimal" ? cast_type::decimal : cast_type::boolean;
    } else {
      fail_at(cur_.pos, "Unknown type for cast: " + std::string(cur_.text));
      return nullptr;
    }
    advance();
    if (!expect(tok::rparen, "')'")) return nullptr;
    return n;
  }

  std::string_view src_;
  std::size_t pos_;
  sql_version ver_;
  token cur_;
  std::optional<parse_error> error_;
  bool uses_payload_ = false;
  bool reads_services_ = false;
  int depth_ = 0;
};

}  // namespace

parse_result<std::shared_ptr<compiled_statement>> parse_statement(std::string_view sql, sql_version v) {
  auto out = std::make_shared<compiled_statement>();
  out->text = std::string(sql);
  out->version = v;
  parser p(out->text, 0, v);
  if (!p.parse_statement(*out)) return p.take_error();
  return std::shared_ptr<compiled_statement>(std::move(out));
}

parse_result<std::shared_ptr<compiled_template>> parse_template(std::string_view text, sql_version v) {
  auto out = std::make_shared<compiled_template>();
  out->version = v;
  std::string literal;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      parser p(text, i + 2, v);
      auto e = p.parse_expr();
      if (!e) return p.take_error();
      if (p.current().t != tok::rbrace) {
        std::size_t at = p.current().pos;
        return parse_error{"Line 1:" + std::to_string(at) + " mismatched input expecting '}'", at};
      }
      if (!literal.empty()) out->parts.push_back(template_part{std::move(literal), nullptr});
      literal.clear();
      out->parts.push_back(template_part{{}, std::move(e)});
      out->uses_payload = out->uses_payload || p.uses_payload();
      out->constant = false;
      i = p.current().pos + 1;
      continue;
    }
    literal += text[i++];
  }
  if (!literal.empty()) out->parts.push_back(template_part{std::move(literal), nullptr});
  return std::shared_ptr<compiled_template>(std::move(out));
}

}  // namespace fleetcore::rules::sql::detail
