"""The API's own connection pool on the warehouse (never Airflow's database)."""

from __future__ import annotations

import os

from psycopg_pool import AsyncConnectionPool


def make_pool(dsn: str, max_size: int | None = None) -> AsyncConnectionPool:
    max_size = max_size or int(os.environ.get("OMS_API_POOL_SIZE", "10"))
    # prepare_threshold=0: every look-up statement is prepared on first use — the same few
    # statements run thousands of times a second. force_generic_plan: plan them once per
    # connection; their plans do not depend on the values (measured: planning the ATP look-up
    # costs ~2.4 ms, running it ~1 ms), and Postgres would otherwise re-plan the first five
    # executions on every connection. jit=off: compiling never pays off for millisecond queries.
    return AsyncConnectionPool(
        dsn, min_size=min(2, max_size), max_size=max_size, open=False,
        kwargs={"prepare_threshold": 0, "autocommit": True,
                "options": "-c plan_cache_mode=force_generic_plan -c jit=off"},
    )
