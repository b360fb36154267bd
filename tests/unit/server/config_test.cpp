#include "server/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <unistd.h>

namespace fleetcore::server {
namespace {

std::filesystem::path write(const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / ("fc-config-" + std::to_string(::getpid()) + ".toml");
  std::ofstream(p) << text;
  return p;
}

TEST(config, defaults_and_overrides) {
  auto c = load_config(write("[server]\ndata_dir = \"/var/lib/fc\"\n[limits]\nmax_packet_size = 2048\n"
                             "[listeners]\nmqtt = \"\"\n[mqtt]\nretain_available = false\n"));
  EXPECT_EQ(c.data_dir, "/var/lib/fc");
  EXPECT_EQ(c.broker.max_packet_size, 2048u);
  EXPECT_EQ(c.mqtt, "");
  EXPECT_EQ(c.mqtts, "[::]:8883");
  EXPECT_FALSE(c.broker.retain_available);
  EXPECT_EQ(c.broker.max_inflight, 100);
}

TEST(config, errors_name_the_key_and_line) {
  try {
    load_config(write("[limits]\nmax_packet_sise = 1\n"));
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(":2: unknown key limits.max_packet_sise"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_config(write("[limits]\nmax_topic_levels = 70000\n")), std::runtime_error);  // u16
  EXPECT_THROW(load_config(write("[limits]\nmax_inflight = \"many\"\n")), std::runtime_error);
  EXPECT_THROW(load_config(write("[limits\n")), std::runtime_error);
}

TEST(config, the_example_file_shows_the_defaults) {
  auto c = load_config(FC_SOURCE_DIR "/fleetcore.example.toml");
  server_config d;
  EXPECT_EQ(c.api, d.api);
  EXPECT_EQ(c.ca_key_type, "ec");
  EXPECT_EQ(c.certificate_days, d.certificate_days);
  EXPECT_EQ(c.thing_type_delete_wait_s, d.thing_type_delete_wait_s);
  EXPECT_EQ(c.broker.max_inflight, d.broker.max_inflight);
  EXPECT_EQ(c.rules.max_inbox, d.rules.max_inbox);
  EXPECT_EQ(c.rules.http_retry_for_s, d.rules.http_retry_for_s);
  EXPECT_EQ(c.rules.allow_plain_http, d.rules.allow_plain_http);
  EXPECT_EQ(c.telemetry.retention_hours, d.telemetry.retention_hours);
  EXPECT_EQ(c.tls_session_lifetime_s, d.tls_session_lifetime_s);
  EXPECT_EQ(c.cluster_nats, d.cluster_nats);
  EXPECT_EQ(c.cluster_name, d.cluster_name);
  auto cl = load_config(write("[cluster]\nnats = \"nats://10.0.0.5:4222\"\nnode_id = \"n2\"\nname = \"plant\"\n"));
  EXPECT_EQ(cl.cluster_nats, "nats://10.0.0.5:4222");
  EXPECT_EQ(cl.node_id, "n2");
  EXPECT_EQ(cl.cluster_name, "plant");
  EXPECT_THROW(load_config(write("[tls]\nca_key_type = \"dsa\"\n")), std::runtime_error);
  EXPECT_EQ(load_config(write("[tls]\nsession_lifetime_s = 0\n")).tls_session_lifetime_s, 0u);
  EXPECT_THROW(load_config(write("[tls]\nsession_lifetime_s = 604801\n")), std::runtime_error);  // > 7 days
  EXPECT_EQ(load_config(write("[registry]\nthing_type_delete_wait_s = 0\n")).thing_type_delete_wait_s, 0);
}

TEST(config, endpoints) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:1883").port, 1883);
  EXPECT_EQ(parse_endpoint("[::1]:0").host, "::1");
  EXPECT_EQ(parse_endpoint(":8883").host, "::");
  EXPECT_THROW(parse_endpoint("localhost"), std::invalid_argument);
  EXPECT_THROW(parse_endpoint("h:99999"), std::invalid_argument);
  EXPECT_THROW(parse_endpoint("h:12x"), std::invalid_argument);
}

}  // namespace
}  // namespace fleetcore::server
