"""gunicorn's configuration for a web node (deploy/systemd/sbt-web.service runs
``gunicorn sbt_site.wsgi --config deploy/gunicorn.conf.py``); every value comes from the
environment (/etc/sbt/env), so one file serves every node.

Threads, not more processes: concurrent small ``POST /usage`` requests in one process share a
token check, a transaction and a commit (group commit), so throughput grows with the threads of
a process; on 2 cores, 2 workers x 32 threads beat 4 workers (docs/performance.md). About one
worker per core.

Database connections: each worker process holds at most ``DATABASE_POOL_MAX_SIZE`` connections
with ``DATABASE_POOL=true``, else one per thread. The budget of this node is logged at start;
the sum over every node and Celery process must fit PostgreSQL's ``max_connections`` (or, behind
PgBouncer, its ``max_client_conn``): docs/operations.md "Database connections".
"""

import os

# Prometheus' multi-process mode (PROMETHEUS_MULTIPROC_DIR): a worker that exits is marked dead
# (docs/operations.md "Metrics and alerts").
from sbt_site.metrics import gunicorn_child_exit as child_exit  # noqa: F401
from sbt_site.metrics import gunicorn_on_starting

bind = os.environ.get("SBT_WEB_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() or 2))
threads = int(os.environ.get("GUNICORN_THREADS", 32))
worker_class = "gthread"
# nginx keeps its upstream connections open (keepalive in deploy/nginx/sbt.conf); gunicorn must
# keep them longer than nginx does, or nginx may send a request on a connection gunicorn closes.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 75))
# Below nginx's proxy_read_timeout (90 s): a stuck request is gunicorn's to end, and nginx
# answers 502 for it rather than a timeout with the worker still busy.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = 30
# Restart workers now and then so slow growth of memory never accumulates; jitter keeps two
# workers from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 100_000))
max_requests_jitter = max_requests // 10
# Only the local nginx may set X-Forwarded-* for gunicorn's own use; Django reads
# X-Forwarded-Proto through SECURE_PROXY_SSL_HEADER and X-Forwarded-For through
# SBT_TRUSTED_PROXY_COUNT, which must match the proxies in front (deploy/nginx/sbt.conf: one).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None  # nginx logs every request already
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
control_socket_disable = True  # gunicorn's control socket (a file in the working directory): unused here


def on_starting(server):
    gunicorn_on_starting(server)  # start with an empty metrics directory
    if os.environ.get("DATABASE_POOL", "").lower() in ("1", "true", "yes", "on"):
        per_process = int(os.environ.get("DATABASE_POOL_MAX_SIZE", 8))
        how = f"{workers} workers x DATABASE_POOL_MAX_SIZE {per_process}"
    else:
        per_process = threads
        how = f"{workers} workers x {threads} threads, one persistent connection each"
    server.log.info("sbt: this node may open up to %d database connections (%s)", workers * per_process, how)
