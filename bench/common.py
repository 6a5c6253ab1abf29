"""Shared plumbing of the benchmarks: a throwaway PostgreSQL (as ./sbt test starts it), the
Django settings pointing at it, a gunicorn server, and an OAuth token. Everything started here
is stopped on exit."""

import atexit
import functools
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SECRET = "bench-" + "x" * 60


SERVERS: dict[str, int] = {}  # name: root process id, of what this run started


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by each started server, its root process and every
    descendant together (a PostgreSQL backend, a gunicorn worker), and by this process.

    A descendant that has ended is counted too, in its parent's ``cutime``/``cstime`` (the CPU
    of the children it has waited for): without it, a PostgreSQL backend whose connection closed
    before the reading took its CPU out of the figure (the ceiling's threads closed theirs, and
    its PostgreSQL CPU read 2-4x lower than the HTTP side's, docs/performance.md)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, used = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            parents[int(entry)] = int(fields[1])
            used[int(entry)] = sum(int(field) for field in fields[11:15]) / ticks  # utime stime cutime cstime

    def root_of(pid: int) -> str | None:
        while pid > 1:
            for name, root in SERVERS.items():
                if pid == root:
                    return name
            pid = parents.get(pid, 1)
        return None

    totals = dict.fromkeys(SERVERS, 0.0)
    for pid, seconds in used.items():
        name = root_of(pid)
        if name is not None:
            totals[name] += seconds
    totals["benchmark client"] = sum(os.times()[:2])
    return totals


def cpu_report(before: dict[str, float], after: dict[str, float], events: int) -> str:
    """``name X ms`` of CPU per 1,000 events for each process group, between two readings."""
    parts = [f"{name} {(after[name] - before.get(name, 0)) / events * 1e6:,.1f} ms" for name in after]
    return "CPU per 1,000 events: " + ", ".join(parts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_service_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def pg_bin() -> str:
    if os.environ.get("PG_BIN"):
        return os.environ["PG_BIN"]
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not candidates:
        sys.exit("PostgreSQL server binaries not found: apt-get install postgresql, or set PG_BIN")
    return candidates[-1]


def start_postgres(statement_stats: bool = False) -> str:
    """Start a throwaway PostgreSQL with production-like durability (fsync on); its URL. With
    ``statement_stats`` it preloads pg_stat_statements (bench/pgstats.py reads it)."""
    binaries = pg_bin()
    directory = tempfile.mkdtemp(prefix="sbt-bench-pg.")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    port = free_port()
    subprocess.run(
        _as_service_user([f"{binaries}/initdb", "-D", f"{directory}/data", "-U", "postgres", "--auth=trust",
                          "--encoding=UTF8", "--locale=C.UTF-8"]),
        check=True, capture_output=True,
    )  # fmt: skip
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=200 "
        "-c shared_buffers=512MB -c max_wal_size=4GB -c work_mem=64MB"
    )
    if statement_stats:
        options += " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
    start = _as_service_user([f"{binaries}/pg_ctl", "-D", f"{directory}/data", "-l", f"{directory}/server.log", "-w",
                              "-t", "60", "-o", options, "start"])  # fmt: skip
    subprocess.run(start, check=True, capture_output=True)
    POSTGRES_START[:] = start

    def stop():
        subprocess.run(
            _as_service_user([f"{binaries}/pg_ctl", "-D", f"{directory}/data", "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)
    _postmaster_pid_read()
    url = f"postgres://postgres@127.0.0.1:{port}/sbt"
    subprocess.run([f"{binaries}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "sbt"], check=True)
    return url


POSTGRES_START: list[str] = []  # the pg_ctl command that started it, for postgres_start_again


def _postmaster_pid_read() -> None:
    data = POSTGRES_START[POSTGRES_START.index("-D") + 1]
    with open(f"{data}/postmaster.pid") as pid_file:
        SERVERS["postgres"] = int(pid_file.readline())


def postgres_start_again() -> None:
    """Start the PostgreSQL of start_postgres again after it was stopped or killed (crash recovery
    runs first); the backends of a killed postmaster may hold its shared memory for a moment."""
    for _ in range(60):
        if subprocess.run(POSTGRES_START, capture_output=True).returncode == 0:
            _postmaster_pid_read()
            return
        time.sleep(0.5)
    sys.exit("PostgreSQL did not start again (see its server.log)")


@functools.cache
def _var_dir() -> str:
    directory = tempfile.mkdtemp(prefix="sbt-bench-var.")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def server_env(database_url: str, settings: str = "sbt_site.settings") -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SBT_ENV": "production",
        "DJANGO_SECRET_KEY": SECRET,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "CELERY_BROKER_URL": "memory://",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": settings,
        "SBT_VAR_DIR": _var_dir(),
        # production settings require a token-signing key (added by the OAuth foundation); the
        # benchmarks issue no OIDC tokens, so a throwaway key generated per run will do
        "OIDC_RSA_PRIVATE_KEY": os.environ.get("OIDC_RSA_PRIVATE_KEY") or _throwaway_rsa_key(),
    }


def _throwaway_rsa_key() -> str:
    global _RSA_KEY
    if _RSA_KEY is None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _RSA_KEY = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
    return _RSA_KEY


_RSA_KEY = None


def setup_django(database_url: str) -> None:
    os.environ.update(server_env(database_url))
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_gunicorn(
    database_url: str,
    workers: int = 2,
    threads: int = 1,
    env: dict | None = None,
    log: Path | None = None,
    settings: str = "sbt_site.settings",
) -> str:
    """Serve on a free port; ``env`` overrides server_env (a real broker, for instance), ``log``
    takes the server's output instead of this terminal, ``settings`` is the settings module."""
    port = free_port()
    output = log.open("ab") if log else None
    process = subprocess.Popen(
        [str(Path(PYTHON).parent / "gunicorn"), "sbt_site.wsgi", "--workers", str(workers), "--bind",
         f"127.0.0.1:{port}", "--threads", str(threads), "--log-level", "warning", "--keep-alive", "30"],
        cwd=ROOT, env=server_env(database_url, settings) | (env or {}), stdout=output, stderr=output,
    )  # fmt: skip

    def stop():
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()

    atexit.register(stop)
    SERVERS["gunicorn"] = process.pid
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    sys.exit("gunicorn did not start")


def make_token() -> str:
    import secrets
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import get_access_token_model

    from accounts.services import oauth_client_create
    from sbt_site.conf import SCOPE_DESCRIPTIONS

    application, _ = oauth_client_create(name="bench", scopes=list(SCOPE_DESCRIPTIONS), tenant_id=None)
    raw = secrets.token_urlsafe(32)
    get_access_token_model().objects.create(
        application=application, token=raw, scope=" ".join(SCOPE_DESCRIPTIONS),
        expires=timezone.now() + timedelta(hours=6),
    )  # fmt: skip
    return raw


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
