"""What a route gets from the application, as FastAPI dependencies: the one place that reads
`app.state` (filled by the lifespan in api/app.py). A route names what it needs in its signature:

    async def route(pool: Pool, cache: AnswerCache, caller: Caller = Depends(require("stock:read"))): ...

so tests and readers see a route's needs, and no route reaches into `request.app.state`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from api.airflow_events import AirflowEvents
from api.atp_cache import AtpCache
from api.token_cache import TokenCache


def get_pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


def get_answer_cache(request: Request) -> AtpCache:
    return request.app.state.atp_cache


def get_token_cache(request: Request) -> TokenCache:
    return request.app.state.atp_cache.tokens


def get_airflow_events(request: Request) -> AirflowEvents:
    return request.app.state.airflow_events


Pool = Annotated[AsyncConnectionPool, Depends(get_pool)]
AnswerCache = Annotated[AtpCache, Depends(get_answer_cache)]
Tokens = Annotated[TokenCache, Depends(get_token_cache)]
Events = Annotated[AirflowEvents, Depends(get_airflow_events)]

