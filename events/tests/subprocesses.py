"""Real processes for the broker tests: web, worker, beat and a throwaway Redis, on the test database."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def healthy(base_url: str) -> bool:
    """Whether the web process at ``base_url`` answers /healthz with 200 (False while it boots)."""
    import requests

    try:
        return requests.get(f"{base_url}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def process_env(*, broker_url: str, var_dir: Path) -> dict:
    """The environment of a control-plane process on the test database and the given broker."""
    db = connection.settings_dict
    database_url = (
        f"postgres://{quote(db['USER'] or '')}:{quote(db['PASSWORD'] or '')}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    )
    return {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")} | {
        "DJANGO_SETTINGS_MODULE": "sbt_site.settings",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker_url,
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the worker decrypts the subscription's secret
        "SBT_VAR_DIR": str(var_dir),
    }


class Processes:
    """Starts processes in their own session, logging to ``log_dir``; ``stop_all`` ends every one."""

    def __init__(self, *, env: dict, log_dir: Path):
        self.env = env
        self.log_dir = log_dir
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        process.log = log
        self.started.append((process, log))
        return process

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, log in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")


def worker_command(bin_dir: Path, name: str) -> list[str]:
    """A solo-pool worker without the cluster chatter (gossip, mingle, heartbeat) the tests do not need."""
    return [
        str(bin_dir / "celery"),
        "-A",
        "sbt_site",
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"{name}@%h",
    ]


def gunicorn_command(bin_dir: Path, port: int) -> list[str]:
    return [
        str(bin_dir / "gunicorn"),
        "sbt_site.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "--no-control-socket",
    ]
