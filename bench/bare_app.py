"""The reference for bench/atp_lookup.py: a bare FastAPI app whose one endpoint returns constant
JSON, run with the same uvicorn settings as the API (setup-notes.md measured the same thing)."""

from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI()
BODY = {"sku": "CONST", "atp_qty": 1}


@app.get("/const")
async def const() -> JSONResponse:
    return JSONResponse(BODY)


@app.get("/health")
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"})
