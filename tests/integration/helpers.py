from conftest import (TIMEOUT, Client, PacketTypes, Raw, RetryingPublisher, Server, connect_bytes, publish_bytes, disconnect_reason, encode_varint, granted_qos, parse_publish, subscribe_bytes, mosquitto, props, publish_rc,
                      wait_for)

__all__ = ["TIMEOUT", "Client", "PacketTypes", "Raw", "RetryingPublisher", "Server", "connect_bytes", "publish_bytes", "disconnect_reason", "encode_varint", "granted_qos", "parse_publish", "subscribe_bytes", "mosquitto", "publish_rc",
           "props", "wait_for"]
