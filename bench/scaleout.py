"""Scale-out benchmark (not a test): usage ingestion through the production topology with one
web node and with two, on the same machine, side by side in one run.

    .venv/bin/python bench/scaleout.py [--batches 100] [--clients 4] [--single-seconds 10] [--single-clients 64]
                                       [--workers 2] [--threads 32]

The topology is the scale-out test's (bench/topology.py: the files under deploy/ rendered and
started): nginx terminating TLS, gunicorn nodes of ``--workers`` x ``--threads`` each,
PostgreSQL (fsync on, as bench/ingest.py starts it) behind PgBouncer in transaction mode with
prepared statements off. The two runs differ only in nginx's upstream: node 1 alone, then nodes
1 and 2. Both nodes share this machine's cores, so the figures show what a second node costs or
gains on the same hardware, not what a second machine would add.
"""

import argparse
import os
import ssl
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import cpu_report, cpu_seconds, make_token, server_env
from bench.ingest import batch_bodies, ingestion_setup, post_all, single_events


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 events per run")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--single-seconds", type=float, default=10)
    parser.add_argument("--single-clients", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes per node")
    parser.add_argument("--threads", type=int, default=32, help="threads per gunicorn worker")
    parser.add_argument("--pool-size", type=int, default=20, help="PgBouncer's default_pool_size")
    args = parser.parse_args()
    database_url, tenants = ingestion_setup()
    from bench.common import SERVERS
    from bench.topology import Topology

    token = make_token()

    topology = Topology.behind_pgbouncer(
        database_url,
        workdir=Path(tempfile.mkdtemp(prefix="sbt-bench-scaleout.")),
        env=server_env(database_url) | {"SECURE_PROXY_SSL_HEADER": "true", "SBT_TRUSTED_PROXY_COUNT": "1"},
        pool_size=args.pool_size,
    )
    try:
        nodes = [topology.start_web(f"web-{index}", workers=args.workers, threads=args.threads) for index in (1, 2)]
        # CPU accounting (bench.common.cpu_seconds) by process tree
        pgbouncer, web_1, web_2 = (process.pid for process, _ in topology.processes.started)
        SERVERS.update({"pgbouncer": pgbouncer, "web node 1": web_1, "web node 2": web_2})
        figures = {}
        for count in (1, 2):
            https_port = topology.start_nginx(nodes[:count], name=f"nginx-{count}")
            SERVERS.pop("nginx", None)
            SERVERS["nginx"] = topology.nginx.pid
            tls = ssl.create_default_context(cafile=str(topology.certificate))
            address = f"127.0.0.1:{https_port}"
            events, warmup, bodies = batch_bodies(tenants, args.batches, count * 100_000_000)
            post_all(address, token, warmup, args.clients, tls)
            before = cpu_seconds()
            seconds, statuses = post_all(address, token, bodies, args.clients, tls)
            batch_cpu = cpu_report(before, cpu_seconds(), len(events))
            assert set(statuses) == {201}, set(statuses)
            before = cpu_seconds()
            single, failed = single_events(
                address, token, tenants, args.single_seconds, args.single_clients, run=f"nodes-{count}", tls=tls
            )
            single_cpu = cpu_report(before, cpu_seconds(), single)
            assert not failed, f"{failed} single-event requests failed"
            figures[count] = (len(events) / seconds, single / args.single_seconds, batch_cpu, single_cpu)
    finally:
        topology.stop_all()

    node = f"{args.workers} gunicorn workers x {args.threads} threads per node"
    print(f"scale-out topology on {os.cpu_count()} cores (nginx TLS, PgBouncer transaction mode, {node}), same run:")
    for label, index in (
        (f"batches of 1,000, {args.clients} clients", 0),
        (f"single events, {args.single_clients} clients", 1),
    ):
        one, two = figures[1][index], figures[2][index]
        print(f"  {label}: one node {one:,.0f} events/s, two nodes {two:,.0f} events/s (two / one {two / one:.2f})")
    for count in (1, 2):
        print(f"  {count} node(s), batches: {figures[count][2]}")
        print(f"  {count} node(s), single events: {figures[count][3]}")


if __name__ == "__main__":
    main()
