#pragma once
// The broker's HTTP Publish (iot-data): a message into the broker under the same topic rules as an
// MQTT PUBLISH; QoS 1 is answered once stored for persistent subscribers.
#include "broker/broker.hpp"
#include "common/aws_api.hpp"

namespace fleetcore::broker {

/// `b` must outlive the API.
common::aws_operations publish_operations(broker& b);

}  // namespace fleetcore::broker
