"""Connections to the warehouse and the DDL for the parts dbt does not own (sql/*.sql)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import dict_row

from oms.settings import REPO_ROOT

SQL_DIR = REPO_ROOT / "sql"


@contextmanager
def connect(dsn: str, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection whose transaction commits on success and rolls back on error."""
    with psycopg.connect(dsn, autocommit=autocommit, row_factory=dict_row) as conn:
        yield conn


def apply_ddl(dsn: str) -> list[str]:
    """Apply every sql/NNN_*.sql file in order. The files are idempotent (IF NOT EXISTS)."""
    applied = []
    with connect(dsn) as conn:
        # One migrator at a time: the API, the CLI and the tests may all start at once.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('oms.apply_ddl'))")
        for path in sorted(SQL_DIR.glob("[0-9][0-9][0-9]_*.sql")):
            conn.execute(path.read_text())
            applied.append(path.name)
    return applied


def scratch_table(cur: psycopg.Cursor, name: str, columns: str) -> None:
    """An empty temporary table for COPY-then-merge, dropped at commit, reusable within a transaction."""
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns}) ON COMMIT DROP")
    cur.execute(f"TRUNCATE {name}")
