"""Responses whose JSON Postgres already built: passed through as bytes, never re-encoded."""

from fastapi import Response


class RawJSONResponse(Response):
    media_type = "application/json"
