#include "cli/api_client.hpp"

#include "auth/pki.hpp"
#include "auth/sigv4.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <unistd.h>

namespace fleetcore::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string ini_value(const std::string& text, const std::string& key) {
  std::size_t pos = 0;
  while ((pos = text.find(key, pos)) != std::string::npos) {
    auto eq = text.find('=', pos);
    auto nl = text.find('\n', pos);
    if (eq != std::string::npos && eq < nl && text.substr(pos, eq - pos).find_first_not_of(key + " ") == std::string::npos) {
      auto v = text.substr(eq + 1, nl == std::string::npos ? std::string::npos : nl - eq - 1);
      v.erase(0, v.find_first_not_of(' '));
      v.erase(v.find_last_not_of(" \r") + 1);
      return v;
    }
    pos += key.size();
  }
  return {};
}

std::string amz_date() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

void write_file(const std::filesystem::path& p, const std::string& text, mode_t mode) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + p.string());
  ::fchmod(fd, mode);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + p.string());
}

}  // namespace

api_client::api_client(const std::filesystem::path& data_dir, std::string endpoint) : ca_(data_dir / "tls" / "ca.crt") {
  if (endpoint.empty()) {
    auto v = json::parse(read_file(data_dir / "listeners.json"));
    auto* api = v.as_object().if_contains("api");
    if (!api) throw std::runtime_error("the server in " + data_dir.string() + " has no API listener");
    endpoint = std::string(api->as_string());
  }
  auto colon = endpoint.rfind(':');
  host_ = endpoint.substr(0, colon);
  port_ = endpoint.substr(colon + 1);
  if (host_ == "0.0.0.0") host_ = "127.0.0.1";
  const char* id = std::getenv("AWS_ACCESS_KEY_ID");
  const char* secret = std::getenv("AWS_SECRET_ACCESS_KEY");
  const auto creds_file = data_dir / "aws-credentials";
  const std::string creds = !(id && secret) || std::filesystem::exists(creds_file) ? read_file(creds_file) : std::string();
  if (id && secret) {
    key_id_ = id;
    secret_ = secret;
  } else {
    key_id_ = ini_value(creds, "aws_access_key_id");
    secret_ = ini_value(creds, "aws_secret_access_key");
  }
  if (key_id_.empty() || secret_.empty()) throw std::runtime_error("no admin credentials");
  // The server refuses another region than its aws.region, which it wrote into the credentials file;
  // the environment overrides it, as for the aws CLI.
  if (auto r = ini_value(creds, "region"); !r.empty()) region_ = r;
  for (const char* var : {"AWS_DEFAULT_REGION", "AWS_REGION"})
    if (const char* r = std::getenv(var); r && *r) region_ = r;
}

api_response api_client::call(const std::string& method, const std::string& target, const json::object& body,
                              const std::string& principal_header) {
  return send(method, target, body, principal_header, "execute-api", {});
}

api_response api_client::call_json(const std::string& service, const std::string& amz_target, const json::object& body) {
  return send("POST", "/", body, {}, service, amz_target);
}

api_response api_client::send(const std::string& method, const std::string& target, const json::object& body,
                              const std::string& principal_header, const std::string& service,
                              const std::string& amz_target) {
  boost::asio::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(ca_.string());
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  tcp::resolver resolver(io);
  beast::get_lowest_layer(stream).connect(resolver.resolve(host_, port_));
  stream.handshake(ssl::stream_base::client);

  std::string payload = body.empty() && method == "GET" ? std::string() : json::serialize(body);
  std::string host = host_ + ":" + port_;
  std::string date = amz_date();
  std::vector<std::pair<std::string_view, std::string_view>> headers{{"host", host}, {"x-amz-date", date}};
  if (!principal_header.empty()) headers.emplace_back("x-amzn-principal", principal_header);
  if (!amz_target.empty()) headers.emplace_back("x-amz-target", amz_target);
  auth::http_request_view view{method, target, headers, payload};
  // botocore's iot model signs control-plane operations as execute-api.
  std::string authorization = auth::authorization_header(view, key_id_, secret_, region_, service);

  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, host);
  req.set("x-amz-date", date);
  if (!principal_header.empty()) req.set("x-amzn-principal", principal_header);
  if (!amz_target.empty()) req.set("x-amz-target", amz_target);
  req.set(http::field::authorization, authorization);
  req.set(http::field::content_type, "application/json");
  req.body() = payload;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  beast::error_code ignored;
  stream.shutdown(ignored);

  api_response out;
  out.status = res.result_int();
  if (auto it = res.find("x-amzn-ErrorType"); it != res.end()) out.error_type = std::string(it->value());
  boost::system::error_code ec;
  out.body = res.body().empty() ? json::value(json::object{}) : json::parse(res.body(), ec);
  return out;
}

int telemetry_query(const std::filesystem::path& data_dir, const std::string& query) {
  api_client api(data_dir);
  std::optional<std::string> token;
  bool header = true;
  do {
    json::object in{{"QueryString", query}};
    if (token) in["NextToken"] = *token;
    auto r = api.call_json("timestream", "Timestream_20181101.Query", in);
    const auto* body = r.body.is_object() ? &r.body.as_object() : nullptr;
    if (!r.error_type.empty() || !body) {
      std::string message;
      if (body)
        if (auto* m = body->if_contains("message"); m && m->is_string()) message = m->as_string();
      std::cerr << r.error_type << ": " << message << "\n";
      return 1;
    }
    if (header) {
      std::string line;
      if (auto* cols = body->if_contains("ColumnInfo"); cols && cols->is_array())
        for (const auto& c : cols->as_array()) line += (line.empty() ? "" : "\t") + std::string(c.at("Name").as_string());
      std::cout << line << "\n";
      header = false;
    }
    if (auto* rows = body->if_contains("Rows"); rows && rows->is_array())
      for (const auto& row : rows->as_array()) {
        std::string line;
        bool first = true;
        for (const auto& d : row.at("Data").as_array()) {
          if (!first) line += '\t';
          first = false;
          if (auto* v = d.as_object().if_contains("ScalarValue")) line += v->as_string();
        }
        std::cout << line << "\n";
      }
    token.reset();
    if (auto* t = body->if_contains("NextToken"); t && t->is_string()) token = std::string(t->as_string());
  } while (token);
  return 0;
}

int register_bootstrap(const std::filesystem::path& data_dir, const std::filesystem::path& file,
                       const std::string& template_name) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  api_client api(data_dir);
  std::size_t registered = 0, line_no = 0;
  json::array batch;
  auto send = [&] {
    if (batch.empty()) return;
    auto r = api.call("POST", "/fleetcore/bootstrap-identities",
                      {{"templateName", template_name}, {"identities", std::move(batch)}});
    batch = json::array();
    if (!r.error_type.empty()) {
      std::string message;
      if (r.body.is_object())
        if (auto* m = r.body.as_object().if_contains("message"); m && m->is_string()) message = m->as_string();
      throw std::runtime_error("before line " + std::to_string(line_no + 1) + ": " + r.error_type + ": " + message +
                               " (" + std::to_string(registered) + " registered)");
    }
    registered += static_cast<std::size_t>(r.body.as_object().at("registered").to_number<std::int64_t>());
  };
  std::string line;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    boost::system::error_code ec;
    auto v = json::parse(line, ec);
    if (ec || !v.is_object()) throw std::runtime_error(file.string() + ":" + std::to_string(line_no) + ": not a JSON object");
    batch.push_back(std::move(v));
    if (batch.size() == 1000) send();
  }
  send();
  std::cout << "{\"registered\": " << registered << "}\n";
  return 0;
}

int create_device(const std::filesystem::path& data_dir, const std::string& name, const std::filesystem::path& out) {
  api_client api(data_dir);
  auto check = [](const api_response& r, const char* what, bool exists_ok = false) {
    if (r.error_type.empty() || (exists_ok && r.error_type == "ResourceAlreadyExistsException")) return;
    std::string message;
    if (r.body.is_object())
      if (auto* m = r.body.as_object().if_contains("message"); m && m->is_string()) message = m->as_string();
    throw std::runtime_error(std::string(what) + ": " + r.error_type + ": " + message);
  };
  const std::string policy = "fleetcore-thing-policy";
  check(api.call("POST", "/things/" + auth::uri_encode(name, false)), "CreateThing");
  // The key stays here; the certificate's CN is the thing name, which HTTPS requests (no client id,
  // so no ${iot:Connection.Thing.ThingName}) are authorized by.
  auto device_key = auth::generate_ec_key();
  auto keys = api.call("POST", "/certificates?setAsActive=true",
                       {{"certificateSigningRequest", auth::make_csr(device_key.get(), name)}});
  check(keys, "CreateCertificateFromCsr");
  const auto& k = keys.body.as_object();
  std::string arn(k.at("certificateArn").as_string());
  // The IoT Lens' least privilege: each device may act only as itself, on its own topics and on
  // the reserved topics (shadows, jobs) of its own thing. Over HTTPS the same, by certificate CN.
  std::string prefix = "arn:aws:iot:*:*:";
  std::string cn = "${iot:Certificate.Subject.CommonName}";
  json::object doc{
      {"Version", "2012-10-17"},
      {"Statement",
       json::array{
           json::object{{"Effect", "Allow"},
                        {"Action", "iot:Connect"},
                        {"Resource", prefix + "client/${iot:Connection.Thing.ThingName}"}},
           json::object{{"Effect", "Allow"},
                        {"Action", json::array{"iot:Publish", "iot:Receive"}},
                        {"Resource", json::array{prefix + "topic/things/${iot:Connection.Thing.ThingName}/*",
                                                 prefix + "topic/$aws/things/${iot:Connection.Thing.ThingName}/*"}}},
           json::object{{"Effect", "Allow"},
                        {"Action", "iot:Subscribe"},
                        {"Resource",
                         json::array{prefix + "topicfilter/things/${iot:Connection.Thing.ThingName}/*",
                                     prefix + "topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/*"}}},
           json::object{{"Effect", "Allow"},
                        {"Action", "iot:Publish"},
                        {"Resource", json::array{prefix + "topic/things/" + cn + "/*",
                                                 prefix + "topic/$aws/things/" + cn + "/*"}}},
           json::object{{"Effect", "Allow"},
                        {"Action", json::array{"iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow",
                                               "iot:ListNamedShadowsForThing"}},
                        {"Resource", json::array{prefix + "thing/" + cn, prefix + "thing/" + cn + "/*"}}}}}};
  check(api.call("POST", "/policies/" + policy, {{"policyDocument", json::serialize(doc)}}), "CreatePolicy", true);
  check(api.call("PUT", "/target-policies/" + policy, {{"target", arn}}), "AttachPolicy");
  check(api.call("PUT", "/things/" + auth::uri_encode(name, false) + "/principals", {}, arn), "AttachThingPrincipal");

  std::filesystem::create_directories(out);
  write_file(out / (name + ".cert.pem"), std::string(k.at("certificatePem").as_string()), 0644);
  write_file(out / (name + ".private.key"), auth::private_key_pem(device_key.get()), 0600);
  write_file(out / "root-CA.crt", read_file(api.ca_file()), 0644);
  std::string mqtts;
  try {
    auto v = json::parse(read_file(data_dir / "listeners.json"));
    if (auto* m = v.as_object().if_contains("mqtts")) mqtts = std::string(m->as_string());
  } catch (const std::exception&) {
  }
  std::cout << json::serialize(json::object{{"thingName", name},
                                            {"certificateArn", arn},
                                            {"certificateId", k.at("certificateId")},
                                            {"policyName", policy},
                                            {"certificateFile", (out / (name + ".cert.pem")).string()},
                                            {"privateKeyFile", (out / (name + ".private.key")).string()},
                                            {"rootCAFile", (out / "root-CA.crt").string()},
                                            {"mqttsEndpoint", mqtts}})
            << "\n";
  return 0;
}

}  // namespace fleetcore::cli
