"""The API's one error envelope, and the one place where errors become HTTP statuses.

Every 4xx/5xx answer has the body `{"error": {"code", "message", "details"}}` (`ErrorResponse`):
`code` is stable and machine-readable ("unknown_order", "invalid_request", "warehouse_unavailable"),
`message` is for people, `details` is null or JSON (the failing fields of a 422, a return's line).

- Domain code raises oms.errors kinds (NotFound, Conflict, Refused), which hold no HTTP:
  `DOMAIN_STATUS` maps each kind to its status here.
- A route refuses with `ApiError(status, code, message)` when the refusal is about HTTP itself
  (a bad cursor, a parameter combination).
- FastAPI's own validation errors, Starlette's 404/405, the warehouse being unreachable (503 with
  Retry-After) and anything unexpected (500) get the same envelope.

`document_errors(app)` puts each status a route can answer into /openapi.json, with this schema.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from oms.errors import Conflict, DomainError, NotFound, Refused

log = logging.getLogger("oms.api")

# Domain kinds → statuses; the most specific kind in an error's class hierarchy wins.
DOMAIN_STATUS: dict[type[DomainError], int] = {NotFound: 404, Conflict: 409, Refused: 422}

# The code of an answer whose raiser named none.
STATUS_CODE_NAMES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "body_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    500: "internal_error", 503: "warehouse_unavailable",
}
RETRY_AFTER_SECONDS = 5


class ErrorBody(BaseModel):
    code: str = Field(description="stable, machine-readable reason, e.g. unknown_order")
    message: str = Field(description="what went wrong, for people")
    details: Any = Field(default=None, description="more about it: the failing fields of a 422, a line number")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx answer."""

    error: ErrorBody


class ApiError(Exception):
    """A refusal about the HTTP request itself; domain refusals are oms.errors kinds."""

    def __init__(self, status: int, message: str, *, code: str | None = None, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.details, self.headers = status, message, details, headers
        self.code = code or STATUS_CODE_NAMES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))


class WarehouseUnavailable(Exception):
    """Postgres cannot be reached: a 503 with Retry-After."""


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "details": details}}, status_code=status,
                        headers=headers)


def unavailable_response(message: str = "the warehouse cannot be reached; try again shortly") -> JSONResponse:
    return error_response(503, "warehouse_unavailable", message,
                          headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def is_unreachable(exc: BaseException) -> bool:
    """True for a failure to reach Postgres at all (no connection, a connection lost, the pool
    waiting in vain, the server shutting down) — not for a statement Postgres refused."""
    if isinstance(exc, psycopg.InterfaceError):  # "the connection is closed"
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # loc, msg and type only: the input (which may be large or hold a secret) is not echoed back
    return [{"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "")),
             "type": str(error.get("type", ""))} for error in exc.errors()]


def allowed_methods(request: Request) -> list[str]:
    """The methods a path answers to. Starlette names only the first route whose template
    matches; a path that is a route's literal template (/v1/atp/query) is that route's alone,
    even where a template with a parameter (/v1/atp/{sku}) would match it too."""
    path = request.url.path
    routes = [r for r in request.app.routes if isinstance(r, APIRoute)]
    matching = [r for r in routes if r.path == path] or [r for r in routes if r.path_regex.match(path)]
    return sorted({method for route in matching for method in route.methods or ()})


def domain_status(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 422


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(domain_status(exc), exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"])
        return error_response(422, "invalid_request", f"{where}: {first['msg']}" if where else first["msg"], details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(exc.status_code, STATUS_CODE_NAMES.get(exc.status_code, "error"), message,
                              headers=headers or None)

    @app.exception_handler(WarehouseUnavailable)
    async def warehouse_unavailable(_: Request, exc: WarehouseUnavailable) -> JSONResponse:
        return unavailable_response()

    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if is_unreachable(exc):
            log.warning("warehouse unreachable on %s %s: %s", request.method, request.url.path,
                        type(exc).__name__)
            return unavailable_response()
        return await internal_error(request, exc)

    app.add_exception_handler(psycopg.OperationalError, database_error)
    app.add_exception_handler(psycopg.InterfaceError, database_error)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error; it was logged")


def responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route's own refusals: `responses(404, 409)` or
    `responses(**{"404": "unknown order"})`; each with the ErrorResponse schema."""
    found: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        found[status] = {"model": ErrorResponse, "description": HTTPStatus(status).phrase}
    for status, description in described.items():
        found[int(status)] = {"model": ErrorResponse, "description": description}
    return found


def _uses_auth(route: APIRoute) -> bool:
    from api.auth import is_auth_check

    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is not None and is_auth_check(dependant.call):
            return True
        stack.extend(dependant.dependencies)
    return False


def document_errors(app: FastAPI) -> None:
    """Add to every route the error answers it can give beyond its own: 401/403 where a token is
    checked, 413/422 from the request guard and validation, 503 while the warehouse is down.
    Routes declare their own refusals (404, 409, …) with `responses=responses(…)`."""
    common = {
        413: "the request body is larger than the API accepts",
        422: "the request is not valid: see error.details",
        503: "the warehouse cannot be reached; retry after Retry-After seconds",
    }
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        wanted = dict(common)
        if route.body_field is not None:  # FastAPI's own answer to a body it cannot decode
            wanted[400] = "the body cannot be read (not UTF-8 JSON)"
        if _uses_auth(route):
            wanted[401] = "no bearer token, or an unknown or revoked one"
            wanted[403] = "the token lacks the scope this route needs"
        for status, description in wanted.items():
            route.responses.setdefault(status, {"description": description})
        for status, response in route.responses.items():
            if isinstance(status, int) and status >= 400:
                response.setdefault("model", ErrorResponse)
                # the field FastAPI builds from `model` when a route is made, for /openapi.json
                route.response_fields[status] = create_model_field(
                    name=f"Response_{status}_{route.unique_id}", type_=response["model"], mode="serialization")
