"""Store staff: pick, click & collect and transfer tasks of a store (token scope `store`).

- GET  /v1/stores/{store_id}/tasks?status=open
- GET  /v1/stores/{store_id}/tasks/{task_id}
- POST /v1/stores/{store_id}/tasks/{task_id}/accept
- POST /v1/stores/{store_id}/tasks/{task_id}/pack
- POST /v1/stores/{store_id}/tasks/{task_id}/reject        {"reason": "item_not_found" | "damaged", "line_keys": […]}
- POST /v1/stores/{store_id}/tasks/{task_id}/ready         click & collect: at the counter
- POST /v1/stores/{store_id}/tasks/{task_id}/picked-up     click & collect: handed over

A `store` token acts for the stores it names only (`oms token create --scope store --store X`):
any other store id is a 403.

A transition that already happened answers the first result again with "replayed": true; one that
the task's state does not allow is a 409 naming the state, an unknown task a 404, a bad body 422.
The logic is oms.fulfilment.tasks (sync psycopg, run in a worker thread, one connection per call).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Caller, require_store
from api.db import run_sync
from api.deps import AnswerCache, Pool
from api.errors import responses
from api.models import StoreTasks, Task, TaskTransition
from api.params import ID_MAX
from oms.fulfilment import tasks

router = APIRouter(prefix="/v1/stores", tags=["store tasks"])

StorePath = Annotated[str, Path(min_length=1, max_length=20)]
TaskPath = Annotated[int, Path(ge=1, le=ID_MAX)]
Status = Literal["open", "accepted", "packed", "in_transit", "received", "rejected", "superseded",
                 "ready_for_pickup", "picked_up", "pickup_expired"]


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["item_not_found", "damaged"]
    line_keys: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description="the lines the store cannot supply (default: every line it picks in this task)")


REFUSALS = responses(**{"404": "no such task at the store",
                         "409": "the task's kind or state does not allow the action (error.message names it)",
                         "422": "an invalid body, or lines the task does not pick"})


@router.get("/{store_id}/tasks", summary="The store's tasks, oldest first", response_model=StoreTasks)
async def list_tasks(pool: Pool, store_id: StorePath, status: Status | None = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                     _: Caller = Depends(require_store("store"))) -> dict[str, Any]:
    found = await run_sync(pool, lambda conn: tasks.list_tasks(conn, store_id, status, limit))
    return {"store_id": store_id, "tasks": found}


@router.get("/{store_id}/tasks/{task_id}", summary="One task", response_model=Task, responses=responses(**{"404": "no such task at the store"}))
async def get_task(pool: Pool, store_id: StorePath, task_id: TaskPath,
                   _: Caller = Depends(require_store("store"))) -> dict[str, Any]:
    task = await run_sync(pool, lambda conn: tasks.get_task(conn, task_id))
    if task is None or task["store_id"] != store_id:
        raise tasks.TaskNotFound(f"no task {task_id} at store {store_id}")
    return task


def _transition(name: str, fn: Callable[..., dict[str, Any]], summary: str) -> None:
    async def endpoint(pool: Pool, cache: AnswerCache, store_id: StorePath, task_id: TaskPath,
                       _: Caller = Depends(require_store("store"))) -> dict[str, Any]:
        result = await run_sync(pool, lambda conn: fn(conn, task_id, store_id=store_id, actor=f"api:{store_id}"))
        # a transition may have moved stock (a collection posting): answer once this process's
        # ATP cache has heard it (docs/adr/0009-atp-answer-cache.md)
        await cache.barrier()
        return result

    router.add_api_route(f"/{{store_id}}/tasks/{{task_id}}/{name}", endpoint, methods=["POST"], summary=summary,
                         name=f"task_{name.replace('-', '_')}", responses=REFUSALS, response_model=TaskTransition)


_transition("accept", tasks.accept, "Accept a task (the store starts picking)")
_transition("pack", tasks.pack, "Packed: the shipment (or transfer) is ready to leave the store")
_transition("dispatch", tasks.dispatch,
            "Transfer: it left the source store (transfer_out postings; in transit). A courier's transfer is "
            "dispatched by its pickup scan")
_transition("receive", tasks.receive,
            "Transfer: it arrived at the pickup store — store_id is the pickup store (transfer_in postings; the "
            "order's hold moves there). A courier's transfer is received by its delivered scan")
_transition("ready", tasks.ready_for_pickup, "Click & collect: ready at the counter (the pickup expiry starts)")
_transition("picked-up", tasks.picked_up, "Click & collect: the customer collected it")


@router.post("/{store_id}/tasks/{task_id}/reject",
             summary="The store cannot supply the lines: release, correct stock, exclude the store, re-route",
             responses=REFUSALS, response_model=TaskTransition)
async def reject_task(pool: Pool, cache: AnswerCache, store_id: StorePath, task_id: TaskPath, body: Rejection,
                      _: Caller = Depends(require_store("store"))) -> dict[str, Any]:
    result = await run_sync(pool, lambda conn: tasks.reject(conn, task_id, body.reason, line_keys=body.line_keys,
                                                             store_id=store_id, actor=f"api:{store_id}"))
    await cache.barrier()  # a rejection moves stock (a correction, a released hold)
    return result
