"""PostgreSQL's side of a benchmark, attributed: the CPU of each of its processes by role (the
backends serving each application_name, checkpointer, walwriter, autovacuum ...), and what its
statements cost (pg_stat_statements), WAL and buffer writes, between two readings.

``bench.common.cpu_seconds`` bills PostgreSQL's whole process tree to whatever ran in the
window, so work PostgreSQL does in the background after one side (a checkpoint, autovacuum) is
billed to the next. Here each client backend is known by its ``application_name`` (set through
the connection options, ``with_application_name``), the background processes by their
``backend_type``; a process that ended within the window is found in the postmaster's
``cutime``/``cstime`` (the CPU of its children it has reaped), billed as "ended in the window".
"""

import os
from dataclasses import dataclass
from urllib.parse import urlencode

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")


def with_application_name(url: str, name: str) -> str:
    """``url`` whose connections name themselves ``name`` in pg_stat_activity (dj_database_url
    passes the query to psycopg's connection options)."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'application_name': name})}"


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None  # ended meanwhile


@dataclass(frozen=True)
class Reading:
    processes: dict[int, tuple[str, float]]  # pid: (role, CPU seconds so far)
    reaped: float  # CPU seconds of the postmaster's ended children, reaped so far
    counters: dict[str, float]  # WAL and buffer counters (pg_stat_wal, pg_stat_bgwriter)


class PostgresMonitor:
    """Readings of one PostgreSQL (``postmaster_pid``) through a connection of its own, which
    also resets and reads pg_stat_statements when the server preloads it."""

    def __init__(self, url: str, postmaster_pid: int):
        self.postmaster_pid = postmaster_pid
        self.connection = psycopg.connect(
            url.split("?")[0].replace("postgres://", "postgresql://"), autocommit=True, application_name="bench-monitor"
        )
        preloaded = self.connection.execute("SHOW shared_preload_libraries").fetchone()[0]
        self.statements = "pg_stat_statements" in preloaded
        if self.statements:
            self.connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def read(self) -> Reading:
        roles = {
            pid: (application_name or "(no application_name)") if backend_type == "client backend" else backend_type
            for pid, application_name, backend_type in self.connection.execute(
                "SELECT pid, application_name, backend_type FROM pg_stat_activity"
            )
        }
        counters = dict(
            zip(
                ("WAL bytes", "WAL full-page images", "WAL syncs", "checkpoints", "buffers by checkpointer",
                 "buffers by bgwriter", "buffers by backends"),
                self.connection.execute(
                    "SELECT wal_bytes, wal_fpi, wal_sync, checkpoints_timed + checkpoints_req, buffers_checkpoint, "
                    "buffers_clean, buffers_backend FROM pg_stat_wal, pg_stat_bgwriter"
                ).fetchone(),
                strict=True,
            )
        )  # fmt: skip
        processes = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (fields := _stat(int(entry))) and int(fields[1]) == self.postmaster_pid:
                processes[int(entry)] = (roles.get(int(entry), "(other)"), (int(fields[11]) + int(fields[12])) / TICKS)
        postmaster = _stat(self.postmaster_pid)
        processes[self.postmaster_pid] = ("postmaster", (int(postmaster[11]) + int(postmaster[12])) / TICKS)
        reaped = (int(postmaster[13]) + int(postmaster[14])) / TICKS
        return Reading(processes=processes, reaped=reaped, counters={k: float(v) for k, v in counters.items()})

    def statements_reset(self) -> None:
        if self.statements:
            self.connection.execute("SELECT pg_stat_statements_reset()")

    def statements_top(self, events: int, limit: int = 12) -> list[str]:
        """The statements run since the reset, most total execution time first: per 1,000
        events their calls, execution and planning time, rows and WAL."""
        if not self.statements:
            return ["(pg_stat_statements is not preloaded)"]
        per = 1000 / events
        # grouped by text: a statement on the session's temporary staging table has a query id
        # per session (the table's oid differs)
        rows = self.connection.execute(
            "SELECT sum(calls)::float8, sum(total_exec_time), sum(total_plan_time), sum(rows)::float8, "
            "sum(wal_bytes)::float8, query "
            "FROM pg_stat_statements "
            "WHERE query NOT LIKE '%%pg_stat_statements%%' AND query NOT LIKE '%%pg_stat_activity%%' "
            "AND query NOT LIKE '%%pg_stat_wal%%' GROUP BY query ORDER BY 2 DESC"
        ).fetchall()
        lines = [
            f"statements, per 1,000 events: {sum(row[0] for row in rows) * per:,.1f} calls, "
            f"{sum(row[1] for row in rows) * per:,.1f} ms executing, {sum(row[2] for row in rows) * per:,.1f} ms "
            f"planning (wall time, waits included); the top {limit}:"
        ]
        for calls, exec_ms, plan_ms, returned, wal_bytes, query in rows[:limit]:
            text = " ".join(query.split())
            lines.append(
                f"  {calls * per:7.1f} calls {exec_ms * per:7.2f} ms exec {plan_ms * per:5.2f} ms plan "
                f"{returned * per:8.0f} rows {int(wal_bytes) * per / 1024:7.0f} KB WAL  "
                f"{text[:90]}{'...' if len(text) > 90 else ''}"
            )
        return lines


def cpu_by_role(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds between two readings by role; processes that ended in between together as
    "ended in the window" (what the postmaster reaped, less what they had used by ``before``)."""
    spent: dict[str, float] = {}
    for pid, (role, seconds) in after.processes.items():
        previous = before.processes.get(pid)
        spent[role] = spent.get(role, 0.0) + seconds - (previous[1] if previous else 0.0)
    ended = [pid for pid in before.processes if pid not in after.processes]
    spent["ended in the window"] = after.reaped - before.reaped - sum(before.processes[pid][1] for pid in ended)
    return spent


def counters_delta(before: Reading, after: Reading) -> dict[str, float]:
    return {name: after.counters[name] - before.counters[name] for name in after.counters}
