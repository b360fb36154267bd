#!/usr/bin/env python3
"""Turns bench/run.sh raw lines into a markdown table: fleetcore beside mosquitto, with the ratio."""
import re
import sys
from collections import defaultdict


def parse(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def main(path):
    rows = defaultdict(dict)
    order = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        d = parse(line)
        b = d.get("broker")
        if "saturated_qos1_fanin_15s" in line:
            key = "peak RSS, 15 s saturated QoS 1 fan-in, 1 KiB (MB)"
            value = int(d["rss_peak_kb"]) / 1024
            metric = f"{value:.0f}"
        elif "scenario" in d and "latency_us_p50" in d:
            key, metric = f"latency p50/p99 µs, 100 pairs, 20k msg/s, QoS {d['qos']}", f"{d['latency_us_p50']} / {d['p99']}"
            value = float(d["p99"])
        elif "scenario" in d:
            key = f"{d['scenario']} {d['clients']}, QoS {d['qos']}, {d['size']} B (msgs/s received)"
            metric, value = d["received_per_s"], float(d["received_per_s"])
        elif "idle_connections" in d:
            key = f"memory per idle connection at {d['idle_connections']} (bytes)"
            metric, value = d["bytes_per_connection"], float(d["bytes_per_connection"])
        elif "connects_per_s" in d:
            key, metric, value = "CONNECTs per second (50 concurrent)", d["connects_per_s"], float(d["connects_per_s"])
        else:
            continue
        if key not in rows:
            order.append(key)
        rows[key][b] = (metric, value)
    print("| measurement | mosquitto | fleetcore | fleetcore / mosquitto |")
    print("|---|---:|---:|---:|")
    for key in order:
        m = rows[key].get("mosquitto", ("-", 0))
        f = rows[key].get("fleetcore", ("-", 0))
        ratio = f"{f[1] / m[1]:.2f}" if m[1] else "-"
        print(f"| {key} | {m[0]} | {f[0]} | {ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
