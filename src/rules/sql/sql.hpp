#pragma once
// AWS IoT SQL (the rules engine's query language): a statement is parsed once, when a rule is created,
// into a compiled tree, then evaluated per message with no parsing of the SQL and little allocation.
//
// Versions 2015-10-08 and 2016-03-23 (and `beta`, evaluated as 2016-03-23) as the AWS IoT Developer
// Guide documents them (iot-sql-*.md). Known deviations from AWS, all deliberate:
// - Int is a 64-bit integer (AWS: 34 digits); an Int operation that overflows yields a Decimal.
// - Decimal is an IEEE double (AWS: 34-digit decimal), printed as the shortest text that reads back
//   to the same double (`0.1 + 0.2` gives 0.30000000000000004, AWS 0.3). With 2015-10-08 a whole
//   Decimal keeps a `.0` (10.0); with 2016-03-23 whole Decimals become Ints, as AWS documents.
// - "Characters" (length, substring, indexof, get on a String) are Unicode code points (Java counts
//   UTF-16 units; the two differ only outside the Basic Multilingual Plane). lower/upper map ASCII only.
// - md2 is Undefined (+ an error) when OpenSSL 3's default provider lacks MD2.
// - parse_time/time_to_epoch take a Joda/JDK pattern subset (see time_format.hpp); zones are UTC, fixed
//   offsets and the region ids of the system tz database, whose transition tables end in 2037 (after
//   that, the last offset applies). An unknown zone yields Undefined + an error.
// - aws_lambda, get_dynamodb, machinelearning_predict need AWS services: Undefined + an error.
// Everything here is free of exceptions at the interface: parse errors and rule errors are values.
#include <boost/container/small_vector.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

namespace fleetcore::rules::sql {

/// The `awsIotSqlVersion` of a rule.
enum class sql_version { v2015_10_08, v2016_03_23, beta };

/// Reads "2015-10-08", "2016-03-23" or "beta" (exactly; AWS rejects other spellings).
std::optional<sql_version> parse_version(std::string_view text);

/// The version as AWS spells it ("2015-10-08"...), also what `sql_version()` returns.
std::string_view to_string(sql_version v);

/// What a message brings to one evaluation. The views and callbacks need only live for the call.
struct message_context {
  /// The topic as the rule sees it (the Basic Ingest prefix `$aws/rules/<rule>/` already stripped).
  std::string_view topic;
  /// The raw payload (JSON, or any bytes).
  std::string_view payload;
  /// clientid(): the MQTT client id, or "n/a" when the message did not arrive over MQTT.
  std::string_view client_id;
  /// principal(): certificate id, or another principal.
  std::string_view principal;
  /// timestamp(): milliseconds since the epoch, injected (the engine never reads a clock).
  std::int64_t timestamp_ms = 0;
  /// accountid().
  std::string_view account_id;
  /// traceid(); empty means Undefined (message not sent over MQTT).
  std::string_view trace_id;
  /// get_thing_shadow(thing[, shadow], roleArn): the shadow document, or nullopt (Undefined). The shadow
  /// name is empty for the classic shadow. May be empty (every call yields Undefined + an error).
  std::function<std::optional<boost::json::value>(std::string_view thing, std::string_view shadow)> shadow_reader;
  /// get_secret(secretId, secretType[, key], roleArn): the secret (or its `key`), or nullopt (Undefined).
  /// `key` is empty when not given. May be empty (every call yields Undefined + an error).
  std::function<std::optional<std::string>(std::string_view secret_id, std::string_view key)> secret_reader;
  /// Optional, for a caller that evaluates several statements over one message: the payload parsed once
  /// (parse_payload). When `payload_parsed` is set, `parsed_payload` is that document, or null for a
  /// payload that is not JSON, and statements do not parse the payload again.
  bool payload_parsed = false;
  const boost::json::value* parsed_payload = nullptr;
};

/// The payload as statements read it (JSON up to 256 levels deep), or nullopt if it is not JSON.
std::optional<boost::json::value> parse_payload(std::string_view payload);
/// The same into `out`, allocating from `sp` (a caller's arena); false if the payload is not JSON.
/// `out` must use `sp` too (`boost::json::value out(sp)`): assigning across storages copies the tree.
bool parse_payload(std::string_view payload, const boost::json::storage_ptr& sp, boost::json::value& out);

/// The top-level members of a payload, read without building its document (Boost.JSON's SAX parser,
/// the options of parse_payload): what a simple WHERE (a top-level field compared with a literal)
/// needs to reject a message cheaply. Object and array members are marked, not kept. Lives on the
/// caller's stack; not copyable.
class payload_fields {
 public:
  struct member {
    std::string key;
    boost::json::value value;  // a scalar or string; null when `complex`
    bool complex = false;      // an object or array
  };
  payload_fields();
  payload_fields(const payload_fields&) = delete;
  payload_fields& operator=(const payload_fields&) = delete;
  /// Reads `payload`, keeping the top-level members named in `wanted` (which must outlive the call);
  /// false if it is not JSON (parse_payload would say the same). Forgets the previous payload's.
  bool scan(std::string_view payload, std::span<const std::string_view> wanted);
  /// Whether the payload is a JSON object (members exist only then).
  bool is_object() const noexcept { return object_; }
  /// The member `key` (the last one of duplicates, as the parsed document keeps), or null.
  const member* find(std::string_view key) const noexcept;

 private:
  struct scanner;
  void set(std::string_view key, boost::json::value v, bool complex);
  alignas(std::max_align_t) unsigned char buf_[512];
  boost::json::monotonic_resource mr_;
  boost::json::storage_ptr sp_;
  boost::container::small_vector<member, 4> members_;
  std::span<const std::string_view> wanted_;
  bool object_ = false;
};

/// Why a statement or template did not parse: `message` in the style of AWS's SqlParseException text
/// ("Line 1:0 mismatched input 'SELEC' expecting 'SELECT'"), `offset` the byte offset in the input.
struct parse_error {
  std::string message;
  std::size_t offset = 0;
};

/// Either a parsed T or the parse_error; a plain value type, no exceptions.
template <class T>
class parse_result {
 public:
  parse_result(T value) : v_(std::move(value)) {}                // NOLINT(google-explicit-constructor)
  parse_result(parse_error error) : v_(std::move(error)) {}       // NOLINT(google-explicit-constructor)
  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  /// Precondition: has_value().
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return std::get<0>(v_); }
  const T& operator*() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  /// Precondition: !has_value().
  const parse_error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, parse_error> v_;
};

/// The result of evaluating a statement against one message.
struct evaluation {
  /// WHERE held (or there is none). When false, payload is empty and no action runs.
  bool matched = false;
  /// The outgoing payload: JSON text, the raw incoming bytes for `SELECT *` over a non-JSON payload,
  /// or empty when `SELECT VALUE` yields Undefined.
  std::string payload;
  /// Whether payload is JSON text (content-type decision of the actions).
  bool is_json = false;
  /// Rule errors met while evaluating (unsupported functions, missing readers...), for the rule-error
  /// log and the errorAction. They do not stop the evaluation: the failing expression is Undefined.
  std::vector<std::string> errors;
};

namespace detail {
struct compiled_statement;
struct compiled_template;
}  // namespace detail

/// A parsed `SELECT ... [FROM '...'] [WHERE ...]`. Immutable after parse: evaluate() may be called from
/// any number of threads at once. Cheap to move; copies share the compiled tree.
class statement {
 public:
  /// Parses `sql` under version `v`. Errors are AWS's SqlParseException cases (bad syntax, unknown
  /// function, a 2016-03-23 feature under 2015-10-08, SELECT VALUE with several items...).
  static parse_result<statement> parse(std::string_view sql, sql_version v);

  /// The FROM topic filter, unquoted; empty when the statement has no FROM (Basic-Ingest-only rules).
  const std::string& topic_filter() const;
  sql_version version() const;
  /// Whether the statement calls get_thing_shadow() or get_secret(): its evaluation waits for another
  /// service, so a caller on a latency-critical thread evaluates it elsewhere.
  bool reads_services() const;
  /// Whether the statement reads the payload (fields, `*`, nested SELECTs): worth parsing it for.
  bool uses_payload() const;
  /// True when the WHERE is a top-level field compared with a literal (`temp > 50`): then
  /// where_rejects can decide most messages from their scanned fields alone.
  bool simple_where() const;
  /// For a simple_where() statement: true when WHERE certainly does not hold for a payload whose
  /// fields are `fields` (null: the payload is not JSON); false when it holds or needs the document.
  bool where_rejects(const payload_fields* fields) const;
  /// The same with the member already looked up (`fields->find(where_field())`, null if absent).
  bool where_rejects(const payload_fields* fields, const payload_fields::member* m) const;
  /// For a simple_where() statement: the top-level field its WHERE compares.
  std::string_view where_field() const;
  /// For a simple_where() statement: equal for two statements whose WHEREs decide every payload alike
  /// (same SQL version, comparison, field and literal), so that rules sharing one decide it once.
  std::string where_key() const;
  /// The SQL text as given to parse().
  const std::string& text() const;

  /// Evaluates WHERE then SELECT against `msg`. Never throws; allocates the output and a scratch arena.
  evaluation evaluate(const message_context& msg) const;

 private:
  explicit statement(std::shared_ptr<const detail::compiled_statement> c) : c_(std::move(c)) {}
  std::shared_ptr<const detail::compiled_statement> c_;
};

/// A `${expr}` substitution template of an action field ("alerts/${topic(2)}"). Expressions see the
/// ORIGINAL message (no SELECT aliases). Immutable after parse; render() is thread-safe.
class substitution_template {
 public:
  /// Parses literal text with `${expression}` parts; expression errors are reported like SQL errors,
  /// with the offset into `text`. A `$` not followed by `{` is literal.
  static parse_result<substitution_template> parse(std::string_view text, sql_version v);

  /// The text with each `${expr}` replaced: a String as its characters, Undefined (and Null) as
  /// nothing, any other value as its JSON text. Errors met are appended to `errors` when given.
  std::string render(const message_context& msg, std::vector<std::string>* errors = nullptr) const;

  /// True when the template has no `${...}` part (render() always returns the same text).
  bool is_constant() const;

 private:
  explicit substitution_template(std::shared_ptr<const detail::compiled_template> c) : c_(std::move(c)) {}
  std::shared_ptr<const detail::compiled_template> c_;
};

}  // namespace fleetcore::rules::sql
