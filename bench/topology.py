"""The scale-out topology of docs/operations.md, started on one machine from the very files
under deploy/ (rendered by deploy/render.py, their commands read from the systemd units' ExecStart=):
nginx in front of gunicorn web nodes, Celery workers and one beat on Redis, PostgreSQL reached
through PgBouncer in transaction mode. Used by the scale-out test
(sbt_site/tests/test_scaleout.py) and benchmark (bench/scaleout.py).

Every process runs in its own session with its log in the work directory; ``stop_all`` ends
them. nginx and pgbouncer are Debian's packages (``./sbt test`` installs them when missing).
"""

import datetime
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from events.tests.subprocesses import Processes, free_port, port_open, wait_for

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PGBOUNCER_POOL_SIZE = 6
PGBOUNCER_RESERVE_POOL_SIZE = 2  # reserve_pool_size in deploy/pgbouncer/pgbouncer.ini


def render(template: Path, values: dict[str, str]) -> str:
    """``template`` rendered by deploy/render.py, run as docs/operations.md runs it."""
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "render.py"), str(template)],
        env={"PATH": os.environ.get("PATH", ""), **values},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def exec_start(unit: str, instance: str = "") -> list[str]:
    """The command of a rendered systemd unit's ``ExecStart=``, with the specifiers the units use
    expanded as systemd does (``%i`` the instance, ``%%`` a percent sign); any other fails."""
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    specifiers = {"i": instance, "%": "%"}
    return shlex.split(re.sub(r"%(.)", lambda match: specifiers[match.group(1)], line.removeprefix("ExecStart=")))


def unit_values(env_file: Path) -> dict[str, str]:
    return {
        "SBT_ROOT": str(ROOT),
        "SBT_USER": "sbt",
        "SBT_ENV_FILE": str(env_file),
        "SBT_WORKER_CONCURRENCY": "1",
    }


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (what nginx serves in the test), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _as_postgres(command: list[str]) -> list[str]:
    # PgBouncer refuses to run as root.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Topology:
    """Starts the pieces one by one; ``env`` is the environment of every control-plane process
    (what /etc/sbt/env holds in production), pointed at PgBouncer once it runs."""

    def __init__(self, *, workdir: Path, env: dict[str, str], postgres_host: str, postgres_port: int):
        for binary in ("nginx", "pgbouncer"):
            if not (shutil.which(binary) or Path(f"/usr/sbin/{binary}").exists()):
                raise RuntimeError(f"{binary} is not installed: apt-get install {binary} (./sbt test installs it)")
        self.workdir = workdir
        self.env = dict(env)
        self.postgres_host, self.postgres_port = postgres_host, postgres_port
        self.processes = Processes(env=self.env, log_dir=workdir)
        self.env_file = workdir / "sbt.env"
        self.web_ports: list[int] = []
        self.pgbouncer_port = 0
        self.https_port = self.http_port = 0
        self.cleanup: list[Path] = []

    def start_pgbouncer(self, *, pool_size: int = PGBOUNCER_POOL_SIZE, admin_user: str = "postgres") -> int:
        # Outside the work directory: PgBouncer runs as postgres, which may not enter it.
        run_dir = Path(tempfile.mkdtemp(prefix="sbt-pgbouncer."))
        self.cleanup.append(run_dir)
        (run_dir / "userlist.txt").write_text(f'"{admin_user}" ""\n')
        self.pgbouncer_port = free_port()
        ini = render(
            DEPLOY / "pgbouncer" / "pgbouncer.ini",
            {
                "SBT_PG_HOST": self.postgres_host,
                "SBT_PG_PORT": str(self.postgres_port),
                "SBT_PGBOUNCER_LISTEN_ADDR": "127.0.0.1",
                "SBT_PGBOUNCER_PORT": str(self.pgbouncer_port),
                "SBT_PGBOUNCER_RUN_DIR": str(run_dir),
                "SBT_PGBOUNCER_LOG_FILE": str(run_dir / "pgbouncer.log"),
                "SBT_PGBOUNCER_POOL_SIZE": str(pool_size),
                "SBT_PGBOUNCER_MAX_CLIENT_CONN": "500",
                # the suite's PostgreSQL trusts loopback; production uses scram-sha-256
                "SBT_PGBOUNCER_AUTH_TYPE": "trust",
                "SBT_PGBOUNCER_AUTH_FILE": str(run_dir / "userlist.txt"),
                "SBT_PGBOUNCER_ADMIN_USER": admin_user,
            },
        )
        (run_dir / "pgbouncer.ini").write_text(ini)
        if os.geteuid() == 0:
            for path in (run_dir, *run_dir.iterdir()):
                shutil.chown(path, "postgres")
        self.processes.start(
            "pgbouncer",
            *_as_postgres([shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(run_dir / "pgbouncer.ini")]),
        )
        wait_for(lambda: port_open(self.pgbouncer_port), timeout=30, what="PgBouncer")
        return self.pgbouncer_port

    def pgbouncer_route(self, *, user: str, database: str) -> None:
        """Every process started from now on reaches ``database`` as ``user`` through PgBouncer
        only, in transaction mode (docs/operations.md "PgBouncer")."""
        self.env |= {
            "DATABASE_URL": f"postgres://{user}@127.0.0.1:{self.pgbouncer_port}/{database}",
            "DATABASE_TRANSACTION_POOLING": "true",
        }
        self.processes.env = self.env

    @classmethod
    def behind_pgbouncer(cls, database_url: str, *, workdir: Path, env: dict[str, str], pool_size: int) -> "Topology":
        """A topology whose processes reach the PostgreSQL of ``database_url`` through PgBouncer,
        started here with ``pool_size`` server connections (stopped again if that fails)."""
        postgres = urlsplit(database_url)
        topology = cls(workdir=workdir, env=env, postgres_host=postgres.hostname, postgres_port=postgres.port)
        try:
            topology.start_pgbouncer(pool_size=pool_size, admin_user=postgres.username)
            topology.pgbouncer_route(user=postgres.username, database=postgres.path.lstrip("/"))
        except BaseException:
            topology.stop_all()
            raise
        return topology

    def start_web(self, name: str, *, workers: int, threads: int) -> int:
        port = free_port()
        unit = render(DEPLOY / "systemd" / "sbt-web.service", unit_values(self.env_file))
        # What differs between two nodes' /etc/sbt/env files.
        self.processes.env = self.env | {
            "SBT_WEB_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
        }
        try:
            self.processes.start(name, *exec_start(unit))
        finally:
            self.processes.env = self.env
        self.web_ports.append(port)
        return port

    def start_worker(self, instance: str):
        unit = render(DEPLOY / "systemd" / "sbt-worker@.service", unit_values(self.env_file))
        return self.processes.start(f"worker-{instance}", *exec_start(unit, instance))

    def start_beat(self):
        unit = render(DEPLOY / "systemd" / "sbt-beat.service", unit_values(self.env_file))
        return self.processes.start("beat", *exec_start(unit))

    def start_nginx(self, web_ports: list[int], name: str = "nginx") -> int:
        directory = self.workdir / name
        directory.mkdir(exist_ok=True)
        certificate, key = self_signed_certificate(directory)
        self.https_port, self.http_port = free_port(), free_port()
        values = {
            "SBT_UPSTREAM_SERVERS": " ".join(f"server 127.0.0.1:{port};" for port in web_ports),
            "SBT_HTTP_LISTEN": f"127.0.0.1:{self.http_port}",
            "SBT_HTTPS_LISTEN": f"127.0.0.1:{self.https_port}",
            "SBT_SERVER_NAME": "127.0.0.1",
            "SBT_TLS_CERTIFICATE": str(certificate),
            "SBT_TLS_CERTIFICATE_KEY": str(key),
            "SBT_MAX_BODY_BYTES": self.env.get("SBT_MAX_BODY_BYTES", "1000000"),
            "SBT_NGINX_DIR": str(directory),
        }
        (directory / "sbt.conf").write_text(render(DEPLOY / "nginx" / "sbt.conf", values))
        (directory / "sbt-proxy.conf").write_text(render(DEPLOY / "nginx" / "sbt-proxy.conf", values))
        # What Debian's /etc/nginx/nginx.conf provides around a site, with paths of our own.
        temp = "\n".join(
            f"    {kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
            f"error_log {directory / 'error.log'} info;\n"
            + ("user root;\n" if os.geteuid() == 0 else "")
            + "events { worker_connections 1024; }\nhttp {\n    log_format upstream '$upstream_addr $status';\n"
            + f"    access_log {directory / 'access.log'} upstream;\n{temp}\n"
            f"    include {directory / 'sbt.conf'};\n}}\n"
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        checked = subprocess.run(
            [nginx, "-t", "-e", str(directory / "error.log"), "-c", str(directory / "nginx.conf")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stderr
        self.nginx = self.processes.start(
            name, nginx, "-e", str(directory / "error.log"), "-c", str(directory / "nginx.conf")
        )
        wait_for(lambda: port_open(self.https_port), timeout=30, what="nginx")
        self.certificate = certificate
        return self.https_port

    def stop_all(self) -> None:
        self.processes.stop_all()
        for directory in self.cleanup:
            shutil.rmtree(directory, ignore_errors=True)


class WebhookReceiver:
    """A webhook receiver on loopback: the (delivery id, event id) of every request it answered."""

    def __init__(self):
        self.received: list[tuple[str, str]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    received.append((self.headers["X-SBT-Delivery-Id"], self.headers["X-SBT-Event-Id"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event_counts(self) -> Counter:
        """How many requests each event id arrived in."""
        return Counter(event_id for _, event_id in list(self.received))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
