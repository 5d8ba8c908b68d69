"""Bearer-token authentication with scopes: `Depends(require("stock:read"))` on a route.

Verified tokens are cached per process for a short while (OMS_TOKEN_CACHE_SECONDS, default 10 s)
and dropped at once when a token is created, changed or revoked: the database NOTIFYs every
change (api/token_cache.py, sql/010_atp_change_notify.sql); while that listener is down every
request asks the database. Refusals are 401 (no token, or an unknown or revoked one) and 403
(a token without the scope), in the API's error envelope (api/errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import Pool, Tokens
from api.errors import ApiError
from api.token_cache import TokenCache
from oms.tokens import acts_for_store, grants, hash_token, with_stores

_bearer = HTTPBearer(auto_error=False, description="A token made with `oms token create --scope …`")
_CHECKS: set[object] = set()


@dataclass(frozen=True)
class Caller:
    """Who is asking: the token's name (as `oms token create` stored it) and its scopes."""

    name: str
    scopes: frozenset[str]

    def __contains__(self, scope: str) -> bool:  # `"admin" in caller`
        return scope in self.scopes


async def _caller(pool, cache: TokenCache, token: str) -> Caller | None:
    hit = cache.get(token)
    if hit is not None:
        return hit[2]
    digest = hash_token(token)
    ticket = cache.begin()
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT name, scopes, store_ids FROM oms.api_token WHERE token_sha256 = %s AND revoked_at IS NULL",
            (digest,),
        )).fetchone()
    # a store token's stores ride along with its scopes (oms.tokens.with_stores)
    caller = Caller(row[0], with_stores(row[1], row[2])) if row else None
    cache.put(token, digest, caller, ticket)
    return caller


def require(scope: str, *alternatives: str):
    """A dependency: the Caller, whose token grants `scope` (or any of `alternatives`)."""

    async def check(pool: Pool, cache: Tokens,
                    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Caller:
        if credentials is None:
            raise ApiError(401, "missing bearer token", code="missing_token", headers={"WWW-Authenticate": "Bearer"})
        caller = await _caller(pool, cache, credentials.credentials)
        if caller is None:
            raise ApiError(401, "unknown or revoked token", code="invalid_token",
                           headers={"WWW-Authenticate": "Bearer"})
        if not any(grants(caller.scopes, wanted) for wanted in (scope, *alternatives)):
            raise ApiError(403, f"token lacks scope '{scope}'" + "".join(f" (or '{a}')" for a in alternatives),
                           code="missing_scope")
        return caller

    _CHECKS.add(check)
    return check


def require_store(scope: str, *alternatives: str):
    """`require(scope, …)` on a route with a `{store_id}` path parameter: a token that names its
    stores (oms token create --scope store --store X) acts for those stores only; any other
    store id is a 403."""
    base = require(scope, *alternatives)

    async def check(request: Request, caller: Caller = Depends(base)) -> Caller:
        store_id = request.path_params.get("store_id")
        if store_id is not None:
            ensure_store(caller, store_id)
        return caller

    _CHECKS.add(check)
    return check


def ensure_store(caller: Caller, store_id: str) -> None:
    """403 unless the token may act for `store_id` (for a store named in a request body)."""
    if not acts_for_store(caller.scopes, store_id):
        raise ApiError(403, f"this token does not act for store {store_id}", code="wrong_store")


def is_auth_check(call: object) -> bool:
    """Whether a dependency is a `require(…)` check (for documenting 401/403: api/errors.py)."""
    return call in _CHECKS
