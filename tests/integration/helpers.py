from conftest import (TIMEOUT, Client, PacketTypes, Raw, Server, connect_bytes, disconnect_reason, encode_varint, granted_qos, subscribe_bytes, mosquitto, props,
                      wait_for)

__all__ = ["TIMEOUT", "Client", "PacketTypes", "Raw", "Server", "connect_bytes", "disconnect_reason", "encode_varint", "granted_qos", "subscribe_bytes", "mosquitto",
           "props", "wait_for"]
