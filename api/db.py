"""The API's own connection pool on the warehouse (never Airflow's database)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

import psycopg
from fastapi.concurrency import run_in_threadpool
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from oms.warehouse import connect

T = TypeVar("T")


def make_pool(dsn: str, max_size: int | None = None, timeout: float | None = None) -> AsyncConnectionPool:
    max_size = max_size or int(os.environ.get("OMS_API_POOL_SIZE", "10"))
    # how long a request waits for a connection before answering 503 (the warehouse is down, or
    # every connection is busy)
    timeout = timeout or float(os.environ.get("OMS_API_POOL_TIMEOUT", "5"))
    # prepare_threshold=0: every look-up statement is prepared on first use — the same few
    # statements run thousands of times a second. force_generic_plan: plan them once per
    # connection; their plans do not depend on the values (measured: planning the ATP look-up
    # costs ~2.4 ms, running it ~1 ms), and Postgres would otherwise re-plan the first five
    # executions on every connection. jit=off: compiling never pays off for millisecond queries.
    return AsyncConnectionPool(
        dsn, min_size=min(2, max_size), max_size=max_size, open=False, timeout=timeout,
        kwargs={"prepare_threshold": 0, "autocommit": True,
                "options": "-c plan_cache_mode=force_generic_plan -c jit=off"},
    )


async def run_sync(pool: AsyncConnectionPool, work: Callable[[psycopg.Connection], T]) -> T:
    """Run the platform's synchronous warehouse code (oms.*) for a route: on a short-lived
    connection of its own (one transaction, committed when `work` returns) in a worker thread.
    For low-volume calls — returns, store tasks, KPIs — so the async pool stays with the look-up
    hot paths and its prepared-statement settings."""
    # an unreachable host fails within the pool's own wait, as a 503 (api/errors.py)
    conninfo = make_conninfo(pool.conninfo, connect_timeout=max(1, round(pool.timeout)))

    def call() -> T:
        with connect(conninfo) as conn:
            return work(conn)

    return await run_in_threadpool(call)
