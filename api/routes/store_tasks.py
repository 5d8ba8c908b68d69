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

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import require_store
from api.db import run_sync
from oms.fulfilment import tasks

router = APIRouter(prefix="/v1/stores", tags=["store tasks"])

StorePath = Annotated[str, Path(min_length=1, max_length=20)]
TaskPath = Annotated[int, Path(ge=1)]
Status = Literal["open", "accepted", "packed", "rejected", "superseded", "ready_for_pickup", "picked_up",
                 "pickup_expired"]


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["item_not_found", "damaged"]
    line_keys: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description="the lines the store cannot supply (default: every line it picks in this task)")


async def _call(request: Request, work: Callable[[psycopg.Connection], Any], *, moves_stock: bool = False) -> Any:
    try:
        result = await run_sync(request, work)
    except tasks.TaskError as exc:
        raise HTTPException(exc.status_code, str(exc)) from exc
    if moves_stock:
        # a transition may have moved stock (a rejection's correction and released hold, a
        # collection posting): answer once this process's ATP cache has heard it (ADR 9)
        await request.app.state.atp_cache.barrier()
    return result


@router.get("/{store_id}/tasks", summary="The store's tasks, oldest first")
async def list_tasks(request: Request, store_id: StorePath, status: Status | None = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                     _: set[str] = Depends(require_store("store"))) -> dict[str, Any]:
    found = await _call(request, lambda conn: tasks.list_tasks(conn, store_id, status, limit))
    return {"store_id": store_id, "tasks": found}


@router.get("/{store_id}/tasks/{task_id}", summary="One task")
async def get_task(request: Request, store_id: StorePath, task_id: TaskPath,
                   _: set[str] = Depends(require_store("store"))) -> dict[str, Any]:
    task = await _call(request, lambda conn: tasks.get_task(conn, task_id))
    if task is None or task["store_id"] != store_id:
        raise HTTPException(404, f"no task {task_id} at store {store_id}")
    return task


def _transition(name: str, fn: Callable[..., dict[str, Any]], summary: str) -> None:
    async def endpoint(request: Request, store_id: StorePath, task_id: TaskPath,
                       _: set[str] = Depends(require_store("store"))) -> dict[str, Any]:
        return await _call(request, lambda conn: fn(conn, task_id, store_id=store_id, actor=f"api:{store_id}"),
                           moves_stock=True)

    router.add_api_route(f"/{{store_id}}/tasks/{{task_id}}/{name}", endpoint, methods=["POST"], summary=summary,
                         name=f"task_{name.replace('-', '_')}")


_transition("accept", tasks.accept, "Accept a task (the store starts picking)")
_transition("pack", tasks.pack, "Packed: the shipment (or transfer) is ready to leave the store")
_transition("ready", tasks.ready_for_pickup, "Click & collect: ready at the counter (the pickup expiry starts)")
_transition("picked-up", tasks.picked_up, "Click & collect: the customer collected it")


@router.post("/{store_id}/tasks/{task_id}/reject",
             summary="The store cannot supply the lines: release, correct stock, exclude the store, re-route")
async def reject_task(request: Request, store_id: StorePath, task_id: TaskPath, body: Rejection,
                      _: set[str] = Depends(require_store("store"))) -> dict[str, Any]:
    return await _call(request, lambda conn: tasks.reject(conn, task_id, body.reason, line_keys=body.line_keys,
                                                           store_id=store_id, actor=f"api:{store_id}"),
                       moves_stock=True)
