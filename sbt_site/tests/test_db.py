"""sbt_site/db.py: the prepared-statement path keeps Django's handling of database errors."""

import os
import subprocess
import sys

import pytest
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections

from sbt_site.db import execute_prepared


@pytest.mark.django_db(transaction=True)
def test_a_dropped_connection_fails_once_with_a_django_error_and_is_then_replaced():
    assert execute_prepared("SELECT 1", []) == [(1,)]
    backend_pid = connection.connection.info.backend_pid
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with other.cursor() as cursor:
            # as a restart or a pooler would drop it; waits (up to 5 s) until the backend is gone
            cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [backend_pid])
            assert cursor.fetchone() == (True,)
    finally:
        other.close()

    with pytest.raises((OperationalError, InterfaceError)):
        execute_prepared("SELECT 1", [])
    assert connection.errors_occurred
    connection.close_if_unusable_or_obsolete()  # what Django does when each request ends
    assert connection.connection is None
    assert execute_prepared("SELECT 1", []) == [(1,)]


def _in_a_pooled_process(test_name: str) -> None:
    environment = {**os.environ, "DATABASE_POOL": "true"}
    # --reuse-db: the parent's test database, already migrated (this test only reads)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--reuse-db", f"{__file__}::{test_name}"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.django_db(transaction=True)
def test_prepared_statements_stay_with_a_pooled_connection_given_back_and_taken_again():
    if connection.pool is None:
        # the suite's own connection is not pooled (run with DATABASE_POOL=false): run this in
        # a process that is, against the same database
        _in_a_pooled_process("test_prepared_statements_stay_with_a_pooled_connection_given_back_and_taken_again")
        return
    for _ in range(6):  # past prepare_threshold
        assert execute_prepared("SELECT %s::int + 41", [1]) == [(42,)]
    backend_pid = connection.connection.info.backend_pid
    for _ in range(connection.pool.max_size):  # the pool hands its connections out in turn
        connection.close()  # what Django does when each request ends: back to the pool
        assert execute_prepared("SELECT %s::int + 41", [1]) == [(42,)]
        if connection.connection.info.backend_pid == backend_pid:
            break
    assert connection.connection.info.backend_pid == backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::int + 41'")
        assert cursor.fetchone() == (1,)
