#pragma once
// The broker's HTTP Publish (iot-data): a message into the broker under the same topic rules as an
// MQTT PUBLISH; QoS 1 is answered once stored for persistent subscribers.
//
// TODO(issue 10): this binding belongs to the broker module (broker/publish_api.cpp), which may
// include common/aws_api.hpp; it sits here until the broker's files are free.
#include "broker/broker.hpp"
#include "common/aws_api.hpp"

namespace fleetcore::api {

/// `b` must outlive the API.
common::aws_operations publish_operations(broker::broker& b);

}  // namespace fleetcore::api
