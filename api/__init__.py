"""The platform's FastAPI service: real-time look-ups for Magento, operations and analysts.

How to add a route
------------------
1. Put it in the route module of its resource (api/routes/<resource>.py, an APIRouter); a new
   module is included in api/app.py `create_app`.
2. Ask for what it needs in its signature, never from `request.app.state`:
   `pool: Pool` (the warehouse's async pool), `cache: AnswerCache` (the ATP answer cache: call
   `await cache.barrier()` after a write that moves stock), `events: Events` (asset events to
   Airflow) — all from api/deps.py — and `caller: Caller = Depends(require("scope"))` (api/auth.py;
   `caller.name` says who). Synchronous domain code runs with `await run_sync(pool, work)` (api/db.py).
3. Refuse with domain errors from the domain code (oms.errors: NotFound, Conflict, Refused, each
   with a `code`); for refusals about HTTP itself raise `ApiError(status, message, code=…)`
   (api/errors.py). Never HTTPException, never a hand-made error body: every 4xx/5xx has the one
   envelope `{"error": {"code", "message", "details"}}`, and a lost warehouse is a 503 by itself.
4. Declare the answers: `response_model=` (or the return annotation) for the success body, and
   `responses=responses(**{"404": "unknown order"})` for the route's own refusals. 401/403 (for
   routes with `require`), 413, 422 and 503 are added to /openapi.json for every route
   (api/errors.py `document_errors`).
5. Parameters: bounded strings (max_length), `IsoDate`/`IsoDateTime` for times (api/params.py).
   Bodies are size-limited and NUL/lone-surrogate text is refused before a route runs (api/guard.py).
6. Add the route to the 503 list in tests/api/test_contract.py; the fuzzer (tests/api/test_fuzz.py)
   finds it through /openapi.json by itself.
"""
