"""The outside fuzzer: schemathesis, every check and every phase (examples, coverage, fuzzing,
stateful), against the API served over real HTTP on a built warehouse, reads /openapi.json as any
client would, and must find nothing. The Clickpost webhook is fuzzed with its own key.

Bounded: a fixed seed and a few examples per operation (about 1-2 minutes); raise
OMS_FUZZ_MAX_EXAMPLES for a deeper run. Where the contract itself answers a schema-valid request
with a refusal, the config below says so operation by operation, with the reason — nothing is
switched off for the whole API except NUL generation (refused by design: tests/api/test_contract.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from api.app import create_app

from ..net import serve
from .helpers import WEBHOOK_KEY

MAX_EXAMPLES = int(os.environ.get("OMS_FUZZ_MAX_EXAMPLES", "10"))
SEED = 20260301

# Semantic refusals of schema-valid requests, per operation (schemathesis's
# positive_data_acceptance otherwise expects 2xx/401/403/404/409 only).
REFUSALS = {
    # opaque cursors: any string fits the schema, only the API's own cursors decode (400)
    "/v1/atp": ["400"], "/v1/orders": ["400"], "/v1/exceptions": ["400"],
    # a customer is named by digits or an e-mail address (400 otherwise)
    "/v1/customers/{identifier}": ["400"],
    # lat without lon, radius without a position (400)
    "/v1/pickup-locations": ["400"],
    # a return is checked against what was shipped: unknown store, line or SKU, more than shipped (422)
    "/v1/returns": ["422"], "/v1/returns/pickups": ["422"],
    # a profile document's rules are validated by the routing engine (422 with the problems)
    "/v1/routing/profiles": ["422"],
    # rejecting lines the task does not pick (422)
    "/v1/stores/{store_id}/tasks/{task_id}/reject": ["422"],
    # a delivery that is not a tracking event is kept raw with the reason and answered 422
    "/v1/webhooks/clickpost": ["422"],
    # `from` after `to` (422)
    "/v1/kpis": ["422"],
    # an order the gate finds malformed (its structural checks go deeper than the JSON schema) is
    # kept in quarantine: 207 when others in the batch landed, 422 when none did
    "/v1/magento/orders": ["207", "422"],
    # a replay period of more than 92 days, or 'to' before 'from' (422)
    "/v1/routing/replay": ["422"],
}


def _config(token: str) -> str:
    lines = [
        f"seed = {SEED}",
        f'headers = {{ Authorization = "Bearer {token}" }}',
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "allow-x00 = false",
        "[phases.stateful]",
        "enabled = true",
        "max-steps = 20",
    ]
    for path, statuses in REFUSALS.items():
        expected = ", ".join(f'"{s}"' for s in ["2xx", "401", "403", "404", "409", *statuses])
        lines += ["[[operations]]", f'include-path = "{path}"',
                  f"checks.positive_data_acceptance.expected-statuses = [{expected}]"]
        if path == "/v1/webhooks/clickpost":
            lines.append(f'headers = {{ webhook_key = "{WEBHOOK_KEY}" }}')
    lines += [
        # the ERP batch is answered line by line (207: each bad line rejected with its errors and
        # quarantined, the good ones kept), so a line that breaks the line schema is not a 4xx
        "[[operations]]", 'include-path = "/v1/erp/stock-movements"',
        'checks.negative_data_rejection.expected-statuses = ["207", "4xx"]',
        # health reports: 503 is their documented "unhealthy" answer, not a server error (no
        # Airflow runs beside this test)
        "[[operations]]", 'include-path-regex = "^(/health|/v1/pipeline/health)$"',
        'checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]',
    ]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_nothing(api_world, api_tokens, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OMS_CLICKPOST_WEBHOOK_KEY", WEBHOOK_KEY)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(api_tokens["admin"]))
    with serve(create_app(api_world)) as base:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "--no-color",
             "run", f"{base}/openapi.json", "--checks", "all",
             "--phases", "examples,coverage,fuzzing,stateful", "--report-dir", str(tmp_path / "reports")],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    summary = result.stdout[-6000:]
    print(summary)
    assert result.returncode == 0, summary
    assert "Tested: " in summary
