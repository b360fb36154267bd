#!/usr/bin/python3
"""How long a cluster takes to take a dead node's persistent sessions over (docs/architecture.md, "A node
that dies or leaves"): three nodes (PostgreSQL, nats-server), N offline sessions held by n1 (one
subscription each, written straight into the database), n1 killed -9; the time until n0, its heir,
has adopted all of them (fleetcore_cluster_sessions_inherited_total), of which the first ~3 s are the
peer timeout. Meanwhile QoS 1/2 messages for those sessions are refused to their publishers.

    /usr/bin/python3 bench/takeover.py [N ...]      # default: 1000 10000 50000

Everything shares this machine's cores. Prints one line per N."""
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("FLEETCORE", os.path.join(ROOT, "build", "src", "server", "fleetcore"))
os.environ["FC_TEST_POSTGRES"] = subprocess.run([os.path.join(ROOT, "scripts", "postgres.sh"), "start"], check=True,
                                                capture_output=True, text=True).stdout.strip()

from conftest import wait_for  # noqa: E402  (after FC_TEST_POSTGRES: conftest reads it)
from test_cluster import Cluster  # noqa: E402


def run(n):
    with tempfile.TemporaryDirectory() as work:
        c = Cluster(work, f"takeover-bench-{n}")
        try:
            n0, n1, _ = c.nodes
            conninfo = n0.storage.removeprefix("postgresql:")
            now_ms = int(time.time() * 1000)
            sql = f"""
              INSERT INTO sessions SELECT 'bench-' || i, 1000 + i, 3600, 5, {now_ms}, 'n1' FROM generate_series(1, {n}) i;
              INSERT INTO subscriptions SELECT 'bench-' || i, 'bench/' || i || '/#', 1, 0, 1000 + i
                FROM generate_series(1, {n}) i;"""
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql, conninfo], check=True)
            t0 = time.monotonic()
            n1.kill9()
            wait_for(lambda: n0.metrics().get("fleetcore_cluster_sessions_inherited_total") == n, timeout=600,
                     what="every session taken over")
            took = time.monotonic() - t0
            print(f"sessions={n} kill_to_all_taken_s={took:.2f} takeover_s={max(took - 3, 0):.2f} "
                  f"sessions_per_s={n / max(took - 3, 0.001):.0f}", flush=True)
        finally:
            c.close()


for n in [int(a) for a in sys.argv[1:]] or [1000, 10000, 50000]:
    run(n)
