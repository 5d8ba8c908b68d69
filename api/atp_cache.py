"""The API's in-process cache of ATP answers, kept in step with the ledger, and the change
listener that keeps it (and the token cache, api/token_cache.py) in step.

docs/adr/0009-atp-answer-cache.md. Postgres sends NOTIFY at the commit of every change that can
move a live ATP answer (sql/010_atp_change_notify.sql: the SKUs changed, or '*' for all) and of
every token change. One listener task per API process LISTENs and drops what changed: answers
here, tokens in its TokenCache (`cache.tokens`). Rules:

- The cache answers only while the listener is connected and the database has the triggers; a
  lost connection empties it and turns it off until the listener is back (then empty again).
- A look-up that misses asks Postgres (the live functions, as without a cache) and stores the
  answer only if nothing that could touch it was invalidated since it started (`begin`/`put`):
  a notification racing with the read never leaves a stale answer behind.
- A write through this process awaits `barrier()` before it answers: a NOTIFY sent after its
  commit comes back through the listener, so every notification of the write was handled first
  and the client's next request here sees the change. Writes from other processes (other API
  workers, Airflow, psql) reach the cache after NOTIFY delivery: usually well under a millisecond,
  bounded by how long the listener takes to get it (the ADR: "Staleness").
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Hashable, Iterable

import psycopg

from api.token_cache import TokenCache

log = logging.getLogger("oms.api.atp_cache")

CHANNEL_ATP = "oms_atp"
CHANNEL_TOKEN = "oms_token"
CHANNEL_SYNC = "oms_atp_sync"
# The triggers the cache relies on (sql/010_atp_change_notify.sql); without any of them it stays off.
REQUIRED_TRIGGERS = {
    f"{table}_atp_{event}" for table in ("erp_movement", "reservation", "sales_posting")
    for event in ("insert", "update", "delete", "truncate")
} | {"atp_snapshot_atp_change", "sku_atp_change", "channel_atp_change", "location_atp_change",
     "api_token_change", "api_token_truncate"}
REQUIRED_EVENT_TRIGGERS = {"oms_atp_marts_ddl", "oms_atp_marts_drop"}
CHECK_SQL = """
SELECT (SELECT count(DISTINCT tgname) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'
        AND tgname = ANY (%(triggers)s)) = cardinality(%(triggers)s::text[])
   AND (SELECT count(*) FROM pg_event_trigger WHERE evtenabled <> 'D'
        AND evtname = ANY (%(events)s)) = cardinality(%(events)s::text[])
"""


class AtpCache:
    def __init__(self, dsn: str, pool=None, *, max_skus: int | None = None, token_seconds: float | None = None,
                 heartbeat_seconds: float = 5.0, warm: bool | None = None) -> None:
        self.dsn = dsn
        self.pool = pool                # the API's pool: barriers and warming use it
        self.max_skus = max_skus or int(os.environ.get("OMS_ATP_CACHE_MAX_SKUS", "100000"))
        self.heartbeat_seconds = heartbeat_seconds
        self.warm = warm if warm is not None else os.environ.get("OMS_ATP_CACHE_WARM", "0") == "1"
        self.tokens = TokenCache(token_seconds)  # verified tokens, kept by the same listener
        self._enabled = False
        self.answers: dict[str, dict[Hashable, object]] = {}  # sku -> variant -> answer (bytes, or a batch item)
        self._seq = 0                   # bumped by every invalidation
        self._all_seq = 0               # the last full invalidation
        self._sku_seq: dict[str, int] = {}  # the last invalidation of each SKU since then
        self._barriers: dict[str, asyncio.Future] = {}
        self._task: asyncio.Task | None = None
        self._warm_task: asyncio.Task | None = None
        self._live = asyncio.Event()
        self._conn: psycopg.AsyncConnection | None = None
        self.stats = {"hits": 0, "misses": 0, "invalidated_skus": 0, "invalidated_all": 0, "connects": 0,
                      "warmed_skus": 0}
        self.warmer = None              # async callable(cache) filling the cache; set by the ATP routes
        self._warm_wanted = False

    @property
    def enabled(self) -> bool:
        """Answering from the cache (and from the token cache): only while the listener is live."""
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = self.tokens.enabled = value

    # --- answers ---------------------------------------------------------------------------------

    def get(self, sku: str, variant: Hashable):
        if self.enabled and (per_sku := self.answers.get(sku)) is not None:
            return per_sku.get(variant)
        return None

    def begin(self) -> int | None:
        """A ticket to take before reading Postgres; None while the cache is off."""
        return self._seq if self.enabled else None

    def put(self, sku: str, variant: Hashable, body, ticket: int | None) -> bool:
        """Keep an answer read after `ticket` was taken, unless the SKU changed since."""
        if ticket is None or not self.enabled or self._all_seq > ticket or self._sku_seq.get(sku, 0) > ticket:
            return False
        per_sku = self.answers.get(sku)
        if per_sku is None:
            if len(self.answers) >= self.max_skus:  # full: drop the oldest-filled SKU
                self.answers.pop(next(iter(self.answers)))
            per_sku = self.answers[sku] = {}
        per_sku[variant] = body
        return True

    def invalidate(self, skus: Iterable[str]) -> None:
        self._seq += 1
        for sku in skus:
            self.answers.pop(sku, None)
            self._sku_seq[sku] = self._seq
            self.stats["invalidated_skus"] += 1

    def invalidate_all(self) -> None:
        self._seq += 1
        self._all_seq = self._seq
        self.answers = {}
        self._sku_seq = {}
        self.tokens.clear()
        self.stats["invalidated_all"] += 1

    # --- the listener ----------------------------------------------------------------------------

    async def start(self, wait: float = 5.0) -> None:
        self._task = asyncio.create_task(self._listen(), name="atp-cache-listener")
        if self.warm:
            self._warm_task = asyncio.create_task(self._warm_loop(), name="atp-cache-warmer")
        try:
            await asyncio.wait_for(self._live.wait(), wait)
        except TimeoutError:
            log.warning("ATP cache listener not connected after %g s: answering from Postgres", wait)

    async def stop(self) -> None:
        for task in (self._warm_task, self._task):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 — shutting down
                    pass

    async def disconnect(self) -> None:
        """Close the listener's connection, as a network failure would (tests, operations)."""
        if self._conn is not None:
            await self._conn.close()

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self.dsn, autocommit=True, application_name="oms-atp-cache-listener", keepalives=1, keepalives_idle=5, keepalives_interval=2,
                        keepalives_count=3) as conn:
                    self._conn = conn
                    for channel in (CHANNEL_ATP, CHANNEL_TOKEN, CHANNEL_SYNC):
                        await conn.execute(f"LISTEN {channel}")
                    ready = (await (await conn.execute(CHECK_SQL, {
                        "triggers": sorted(REQUIRED_TRIGGERS), "events": sorted(REQUIRED_EVENT_TRIGGERS)})
                    ).fetchone())[0]
                    # Listening first, then empty: anything committed from here on is heard.
                    self.invalidate_all()
                    self.enabled = bool(ready)
                    self._want_warm()
                    self.stats["connects"] += 1
                    if not ready:
                        log.warning("ATP change triggers missing (sql/010_atp_change_notify.sql, event triggers "
                                    "need a superuser): the API answers every ATP look-up from Postgres")
                    self._live.set()
                    backoff = 0.1
                    while True:
                        async for notify in conn.notifies(timeout=self.heartbeat_seconds):
                            self._handle(notify.channel, notify.payload)
                        await conn.execute("SELECT 1")  # a dead connection raises here
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — any failure: off, empty, reconnect
                log.warning("ATP cache listener lost its connection (%s); reconnecting", exc)
            finally:
                self._conn = None
                self.enabled = False
                self._live.clear()
                self.invalidate_all()
                for future in self._barriers.values():
                    if not future.done():
                        future.set_result(False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _handle(self, channel: str, payload: str) -> None:
        if channel == CHANNEL_ATP:
            if payload == "*":
                self.invalidate_all()
                self._want_warm()
            else:
                self.invalidate(json.loads(payload))
        elif channel == CHANNEL_TOKEN:
            if payload == "*":
                self.invalidate_all()
            else:
                self.tokens.drop(payload)
        elif channel == CHANNEL_SYNC and (future := self._barriers.get(payload)) is not None and not future.done():
            future.set_result(True)

    async def barrier(self, timeout: float = 2.0) -> None:
        """Return once every change committed before this call has reached this process's cache."""
        if not self.enabled:
            return
        key = uuid.uuid4().hex
        future = self._barriers[key] = asyncio.get_running_loop().create_future()
        try:
            async with self.pool.connection() as conn:
                await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL_SYNC, key))
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            log.warning("ATP cache barrier timed out: emptying the cache")
            self.invalidate_all()
        finally:
            self._barriers.pop(key, None)

    # --- warming ---------------------------------------------------------------------------------

    def _want_warm(self) -> None:
        self._warm_wanted = True

    async def _warm_loop(self) -> None:
        """Fill the whole catalogue after start and after each full invalidation (debounced)."""
        while True:
            await asyncio.sleep(1.0)
            if not (self._warm_wanted and self.enabled and self.warmer is not None):
                continue
            self._warm_wanted = False
            try:
                started = time.perf_counter()
                count = await self.warmer(self)
                self.stats["warmed_skus"] += count
                log.info("ATP cache warmed: %d SKUs in %.1f s", count, time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 — warming is an optimisation; look-ups still work
                log.warning("ATP cache warming failed: %s", exc)
