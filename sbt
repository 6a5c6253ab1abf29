#!/usr/bin/env bash
# The control plane's two commands (README.md "Quick start"):
#   ./sbt run    set up and run on the embedded default (SQLite, filesystem broker)
#   ./sbt test   set up and run the whole test suite against a throwaway PostgreSQL, and ruff
# and a few helpers:
#   ./sbt schema regenerate docs/openapi.yaml from the code
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31mERROR: %s\033[0m\n' "$*" >&2; exit 1; }

ensure_venv() {
  # $1: requirements file to install. Reinstalls only when the file's content changed.
  local requirements=$1
  if [ ! -x "$PY" ]; then
    say "Creating the virtual environment in .venv"
    python3 -m venv "$VENV" || die "python3 -m venv failed. On Debian/Ubuntu: apt-get install python3-venv (Python 3.11+ is needed)."
  fi
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed ($("$PY" --version))."
  # The file and requirements.txt (which requirements-dev.txt includes): a change to the dev
  # pins alone does not reinstall for `./sbt run`.
  local stamp="$VENV/.installed-$(basename "$requirements")-$(cat "$requirements" requirements.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    say "Installing $requirements"
    "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$PY" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    rm -f "$VENV"/.installed-"$(basename "$requirements")"-*
    touch "$stamp"
  fi
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Run a command as an unprivileged user when we are root: PostgreSQL refuses to run as root.
as_service_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

PG_DIR=""
REDIS_PID=""
WORKER_PID=""
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$WORKER_PID" ]; then kill "$WORKER_PID" 2>/dev/null || true; wait "$WORKER_PID" 2>/dev/null || true; fi
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
    as_service_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}

start_postgres() {
  PG_BIN=${PG_BIN:-}
  if [ -z "$PG_BIN" ]; then
    if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
      PG_BIN=$(pg_config --bindir)
    else
      PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    fi
  fi
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] \
    || die "PostgreSQL server binaries not found (initdb, pg_ctl). Install them (apt-get install postgresql) or set PG_BIN. The suite runs on PostgreSQL only."
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "Running as root, but there is no 'postgres' user to run PostgreSQL as (apt-get install postgresql creates it)."
  fi
  PG_DIR=$(mktemp -d /tmp/sbt-test-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
  local port; port=$(free_port)
  say "Starting a throwaway PostgreSQL ($("$PG_BIN/postgres" --version | awk '{print $3}')) on 127.0.0.1:$port"
  as_service_user "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
  # Durability is not under test here: skip fsync to keep the suite fast.
  as_service_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/sbt"
}

start_redis() {
  if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "Installing redis-server from Debian's packages (needed by the Celery broker tests)"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null \
        || die "apt-get install redis-server failed"
    else
      die "redis-server is not installed: apt-get install redis-server (the Celery broker tests need it)"
    fi
  fi
  local port; port=$(free_port)
  say "Starting a throwaway Redis on 127.0.0.1:$port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 50); do
    "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $port)))" && break
    sleep 0.1
  done
  export SBT_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
}

ensure_chromium() {
  # The admin smoke test drives a real Chromium (Debian's package) through Playwright.
  [ -n "${SBT_TEST_CHROMIUM:-}" ] && return 0
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "Installing chromium from Debian's packages (needed by the admin browser test)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
      || die "apt-get install chromium failed"
  else
    die "chromium is not installed: apt-get install chromium, or set SBT_TEST_CHROMIUM (the admin browser test needs it)"
  fi
}

ensure_promtool() {
  # The metrics tests check the alert rules and a real scrape with promtool (Debian's prometheus).
  command -v promtool >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "Installing prometheus (promtool) from Debian's packages (needed by the metrics tests)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
      || die "apt-get install prometheus failed"
  else
    die "promtool is not installed: apt-get install prometheus (the metrics tests need it)"
  fi
}

ensure_debian_packages() {
  # The scale-out test (pytest -m scaleout) starts Debian's nginx and pgbouncer from deploy/.
  local missing=() package
  for package in nginx pgbouncer; do
    command -v "$package" >/dev/null || [ -x "/usr/sbin/$package" ] || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "Installing ${missing[*]} from Debian's packages (needed by the scale-out test)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "apt-get install ${missing[*]} failed"
  else
    die "${missing[*]} not installed: apt-get install ${missing[*]} (the scale-out test needs them)"
  fi
}

# Run a command again whenever it exits, as systemd's Restart=always does in production: a worker
# that a broker fault killed must not stop deliveries until someone notices (issue 18). The wait
# doubles up to a minute while it keeps failing and starts over after a minute of uptime. TERM
# stops the command and the loop; run it in the background (`supervise … &`), so that the trap is
# the background subshell's own.
supervise() {
  local child="" delay=1 started status
  trap 'if [ -n "$child" ]; then kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; fi; exit 0' TERM
  while true; do
    started=$SECONDS
    "$@" &
    child=$!
    status=0
    wait "$child" || status=$?
    child=""
    if (( SECONDS - started >= 60 )); then delay=1; fi
    printf '%s sbt: %s exited with status %s; restarting it in %ss\n' "$(date -u +%FT%TZ)" "$(basename "$1")" "$status" "$delay"
    sleep "$delay" &
    child=$!
    wait "$child" || true
    child=""
    delay=$(( delay * 2 > 60 ? 60 : delay * 2 ))
  done
}

cmd_run() {
  ensure_venv requirements.txt
  local port=${PORT:-8000} host=${HOST:-127.0.0.1}
  export SBT_PUBLIC_URL=${SBT_PUBLIC_URL:-http://$host:$port}
  say "Migrating the database (var/db.sqlite3)"
  "$PY" manage.py migrate --noinput -v 0
  "$PY" manage.py demo_bootstrap --url "http://$host:$port"
  # INT/TERM exit (and so run cleanup on EXIT) as soon as they arrive: bash runs a trap only
  # between commands, which is why the server runs in the background and the script waits on it.
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  say "Starting the Celery worker with beat (filesystem broker under var/celery, log in var/celery.log; restarted if it exits)"
  # -Q: the default queue and the provisioning scripts' (docs/provisioning.md), one worker for both.
  supervise "$VENV/bin/celery" -A sbt_site worker --beat --pool=solo -Q celery,provisioning --loglevel=INFO \
    >"$ROOT/var/celery.log" 2>&1 &
  WORKER_PID=$!
  say "Serving on http://$host:$port/ (Ctrl-C stops)"
  "$PY" manage.py runserver --noreload "$host:$port" &
  SERVER_PID=$!
  local status=0
  wait "$SERVER_PID" || status=$?
  SERVER_PID=""
  return "$status"
}

cmd_test() {
  ensure_venv requirements-dev.txt
  ensure_chromium
  ensure_promtool
  ensure_debian_packages
  trap cleanup EXIT INT TERM
  start_postgres
  start_redis
  say "ruff"
  "$VENV/bin/ruff" check .
  "$VENV/bin/ruff" format --check . >/dev/null || die "ruff format would reformat files: run .venv/bin/ruff format ."
  say "pytest on PostgreSQL"
  "$PY" -m pytest "$@"
}

cmd_schema() {
  ensure_venv requirements-dev.txt
  "$PY" manage.py spectacular --file docs/openapi.yaml --validate
  say "docs/openapi.yaml regenerated"
}

case "${1:-}" in
  run) shift; cmd_run "$@" ;;
  test) shift; cmd_test "$@" ;;
  schema) shift; cmd_schema "$@" ;;
  *) echo "usage: ./sbt run | ./sbt test [pytest args] | ./sbt schema" >&2; exit 2 ;;
esac
