"""The API's own connection pool on the warehouse (never Airflow's database)."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool


def make_pool(dsn: str, max_size: int = 10) -> AsyncConnectionPool:
    # prepare_threshold=0: every look-up statement is prepared on first use — the same few
    # statements run thousands of times a second, so planning them once saves a round of work.
    return AsyncConnectionPool(
        dsn, min_size=2, max_size=max_size, open=False, kwargs={"prepare_threshold": 0, "autocommit": True}
    )
