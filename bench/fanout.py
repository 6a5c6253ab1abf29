"""Webhook fan-out benchmark (not a test): real Celery workers on Redis delivering to receivers on
loopback that answer in 200 ms, one subscription's receiver never answering (each attempt ends
at the read timeout); the healthy subscriptions' lag without and with that slow one, side by
side in one run.

    .venv/bin/python bench/fanout.py [--events 10000] [--subscriptions 100] [--workers 2]
                                     [--pool threads] [--concurrency 16] [--answer-ms 200]
                                     [--in-flight 2] [--rate 0]

Each event goes to one subscription (event types ``bench.fanout.<run>.<n>``, the events spread
evenly), so ``--events`` is also the number of deliveries. Two runs on the same workers: first
every subscription healthy, then the same with subscription 0 pointed at a port that takes
connections and never answers. The events are published ``--rate`` a second (0: all at once,
in transactions of 100, as a burst of onboardings would); the outbox dispatches them through the
workers, which send each delivery as its own task. Lag is ``delivered_at - event.created``: the
dispatch, the queue and the 200 ms answer. ``--in-flight`` is
``SBT_EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION`` for the workers (0: no limit, as before it
existed). PostgreSQL and Redis are throwaway servers started here; one beat runs the sweep.
"""

import argparse
import asyncio
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PYTHON, ROOT, free_port, percentile, server_env, start_postgres

CELERY = str(Path(PYTHON).parent / "celery")


def start_redis() -> str:
    if not shutil.which("redis-server"):
        sys.exit("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    atexit.register(process.terminate)
    for _ in range(100):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return f"redis://127.0.0.1:{port}/0"
        time.sleep(0.1)
    sys.exit("redis-server did not start")


def start_receiver(answer_seconds: float) -> int:
    """An HTTP receiver on loopback that answers 200 after ``answer_seconds``, on an event loop
    of its own (cheap per connection, so the receiver is not what limits the workers)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            await asyncio.sleep(answer_seconds)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    port = free_port()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(asyncio.start_server(answer, "127.0.0.1", port, backlog=1024))
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    ready.wait(10)
    return port


def start_silent_receiver() -> int:
    """A port whose connections the kernel completes and nobody ever answers."""
    server = socket.create_server(("127.0.0.1", 0), backlog=4096)
    atexit.register(server.close)
    return server.getsockname()[1]


def start_celery(env: dict, name: str, *arguments: str) -> subprocess.Popen:
    log = open(Path(env["SBT_VAR_DIR"]) / f"{name}.log", "ab")  # noqa: SIM115 - the process's own log
    process = subprocess.Popen(
        [CELERY, "-A", "sbt_site", *arguments], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    atexit.register(_stop, process)
    return process


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def publish(run: str, subscriptions: int, events: int, rate: float) -> None:
    from django.db import transaction

    from events.services import event_publish

    started = time.monotonic()
    for first in range(0, events, 100):
        with transaction.atomic():
            for index in range(first, min(first + 100, events)):
                event_publish(detail_type=f"bench.fanout.{run}.{index % subscriptions}", detail={"index": index})
        if rate:
            time.sleep(max(0.0, started + (first + 100) / rate - time.monotonic()))


def run_once(run: str, args, urls: list[str]) -> dict:
    """Publish ``args.events`` events to one subscription per URL of ``urls``; wait until every
    delivery to a healthy one (all but the one at ``args.slow_url``) succeeded."""
    from django.db.models import F

    from events.models import Delivery
    from events.services import subscription_create

    subscriptions = [
        subscription_create(url=url, event_types=[f"bench.fanout.{run}.{index}"])[0] for index, url in enumerate(urls)
    ]
    slow = subscriptions[0] if args.slow_url in urls else None
    healthy = [subscription.pk for subscription in subscriptions if subscription is not slow]
    expected = sum(1 for index in range(args.events) if subscriptions[index % len(urls)] is not slow)
    started = time.monotonic()
    publish(run, len(urls), args.events, args.rate)
    delivered = Delivery.objects.filter(subscription__in=healthy, status=Delivery.Status.SUCCEEDED)
    last, last_change = -1, time.monotonic()
    while (count := delivered.count()) < expected:
        if count != last:
            last, last_change = count, time.monotonic()
            print(f"  [{run}] {count:,} of {expected:,} healthy deliveries done", flush=True)
        if time.monotonic() - last_change > 180:
            sys.exit(f"[{run}] no delivery for 3 minutes: see the worker logs in {os.environ['SBT_VAR_DIR']}")
        time.sleep(2)
    seconds = time.monotonic() - started
    lags = [
        lag.total_seconds()
        for lag in delivered.annotate(lag=F("delivered_at") - F("event__created")).values_list("lag", flat=True)
    ]
    figures = {"seconds": seconds, "healthy": len(lags), "lags": lags}
    if slow is not None:
        slow_deliveries = Delivery.objects.filter(subscription=slow)
        figures["slow_attempts"] = sum(slow_deliveries.values_list("attempts", flat=True))
        figures["slow_pending"] = slow_deliveries.filter(attempts=0).count()
    return figures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (one machine)")
    parser.add_argument("--pool", default="threads", choices=("threads", "prefork", "gevent"))
    parser.add_argument("--concurrency", type=int, default=16, help="slots per worker")
    parser.add_argument("--answer-ms", type=float, default=200)
    parser.add_argument("--in-flight", type=int, default=2, help="SBT_EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION")
    parser.add_argument("--rate", type=float, default=0, help="events published a second (0: all at once)")
    args = parser.parse_args()

    database_url = start_postgres()
    broker_url = start_redis()
    env = server_env(database_url) | {
        "CELERY_BROKER_URL": broker_url,
        "EVENT_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "SBT_EVENT_DELIVERY_IN_FLIGHT_PER_SUBSCRIPTION": str(args.in_flight),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    healthy_url = f"http://127.0.0.1:{start_receiver(args.answer_ms / 1000)}/hook"
    args.slow_url = f"http://127.0.0.1:{start_silent_receiver()}/hook"
    worker_arguments = ["worker", "-Q", "celery", "--pool", args.pool, "--concurrency", str(args.concurrency)]
    for index in range(args.workers):
        start_celery(env, f"worker-{index}", *worker_arguments, "--loglevel", "WARNING", "-n", f"fanout-{index}@%h")
    start_celery(env, "beat", "beat", "--loglevel", "WARNING")

    from sbt_site.conf import sbt_settings

    read_timeout = sbt_settings.EVENT_DELIVERY_READ_TIMEOUT_SECONDS
    urls = [healthy_url] * args.subscriptions
    print(f"without the slow subscription ({args.events:,} events, {args.subscriptions} subscriptions):", flush=True)
    without = run_once("without", args, urls)
    print("with subscription 0 never answering:", flush=True)
    with_slow = run_once("with", args, [args.slow_url, *urls[1:]])

    workers = f"{args.workers} workers x {args.concurrency} ({args.pool} pool)"
    print(
        f"\nwebhook fan-out on {os.cpu_count()} cores, {workers}, receivers answering in {args.answer_ms:.0f} ms,"
        f" in-flight limit per subscription {args.in_flight or 'none'}, read timeout {read_timeout:.0f} s, same run:"
    )
    print(f"  {'':<34}{'without slow':>16}{'with slow':>16}")
    rows = [
        ("healthy deliveries", lambda run: f"{run['healthy']:,}"),
        ("deliveries/s per worker", lambda run: f"{run['healthy'] / run['seconds'] / args.workers:,.1f}"),
        ("healthy lag p50 (s)", lambda run: f"{percentile(run['lags'], 0.5):.2f}"),
        ("healthy lag p99 (s)", lambda run: f"{percentile(run['lags'], 0.99):.2f}"),
        ("healthy lag max (s)", lambda run: f"{max(run['lags']):.2f}"),
    ]
    for label, value in rows:
        print(f"  {label:<34}{value(without):>16}{value(with_slow):>16}")
    print(
        f"  slow subscription meanwhile: {with_slow['slow_attempts']} attempts ended by the timeout,"
        f" {with_slow['slow_pending']} of its deliveries not attempted yet"
    )
    ratio = percentile(with_slow["lags"], 0.99) / percentile(without["lags"], 0.99)
    print(f"  healthy p99 lag with / without the slow subscription: {ratio:.2f}")


if __name__ == "__main__":
    main()
