"""`oms backfill`: the REST API v2 calls it makes, its dry run, its progress until Airflow completes
the backfill, and clear errors. Airflow is a stand-in serving the v2 shapes of the backfill
endpoints (`/backfills/dry_run`, `/backfills`, `/backfills/{id}`, `/dags`, `/dags/{id}/dagRuns`) whose runs
advance one state per poll; the backfilled runs' effect on the warehouse is
tests/test_outage_backfill.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from oms import cli
from oms.integrations.airflow import PIPELINE_DAGS

from .net import free_port, serve

runner = CliRunner()


def flat(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())
NEXT_STATE = {"queued": "running", "running": "success"}


class FakeAirflow:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.backfills: dict[int, dict] = {}
        self.runs: dict[str, list[dict]] = {}
        self.busy: set[str] = set()
        self.fail_dates: set[str] = set()
        self.scheduler_beat: str | None = None  # None: a live scheduler; else its last heartbeat, down since
        self.paused: set[str] = set()
        self.app = FastAPI()
        self._routes()

    @staticmethod
    def dates(body: dict) -> list[str]:
        step = timedelta(minutes=15 if body["dag_id"] == "erp_stock_ingest" else 10)
        moment, end = datetime.fromisoformat(body["from_date"]), datetime.fromisoformat(body["to_date"])
        found = []
        while moment <= end:
            found.append(moment.isoformat().replace("+00:00", "Z"))
            moment += step
        return found

    def _routes(self) -> None:
        app = self.app

        @app.get("/api/v2/monitor/health")
        async def monitor():
            self.calls.append(("GET", "/monitor/health", {}))
            scheduler = ({"status": "healthy", "latest_scheduler_heartbeat": "2026-03-05T12:00:00Z"}
                         if self.scheduler_beat is None
                         else {"status": "unhealthy", "latest_scheduler_heartbeat": self.scheduler_beat})
            return {"metadatabase": {"status": "healthy"}, "scheduler": scheduler,
                    "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": "2026-03-05T12:00:00Z"},
                    "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": "2026-03-05T12:00:00Z"}}

        @app.post("/auth/token")
        async def token():
            return {"access_token": "t0k"}

        @app.post("/api/v2/backfills/dry_run")
        async def dry_run(request: Request):
            body = await request.json()
            self.calls.append(("POST", "/backfills/dry_run", body))
            return {"backfills": [{"logical_date": d, "partition_key": None, "partition_date": None}
                                  for d in self.dates(body)], "total_entries": len(self.dates(body))}

        @app.post("/api/v2/backfills")
        async def create(request: Request):
            body = await request.json()
            self.calls.append(("POST", "/backfills", body))
            if body["dag_id"] in self.busy:
                return JSONResponse({"detail": "There is already a running backfill for dag " + body["dag_id"]}, 409)
            backfill_id = len(self.backfills) + 1
            self.backfills[backfill_id] = {"id": backfill_id, "dag_id": body["dag_id"], "from_date": body["from_date"],
                                           "to_date": body["to_date"], "completed_at": None}
            self.runs[body["dag_id"]] = [{"dag_run_id": f"backfill__{d}", "logical_date": d, "state": "queued"}
                                         for d in self.dates(body)]
            return self.backfills[backfill_id]

        @app.get("/api/v2/backfills/{backfill_id}")
        async def get(backfill_id: int):
            backfill = self.backfills[backfill_id]
            if all(r["state"] in ("success", "failed") for r in self.runs[backfill["dag_id"]]):
                backfill["completed_at"] = "2026-03-05T12:00:00Z"
            return backfill

        @app.get("/api/v2/dags")
        async def dags():
            self.calls.append(("GET", "/dags", {}))
            return {"dags": [{"dag_id": d, "is_paused": d in self.paused} for d in PIPELINE_DAGS],
                    "total_entries": len(PIPELINE_DAGS)}

        @app.get("/api/v2/dags/{dag_id}/dagRuns")
        async def dag_runs(dag_id: str, request: Request):
            self.calls.append(("GET", f"/dags/{dag_id}/dagRuns", dict(request.query_params)))
            runs = self.runs.get(dag_id, [])
            for run in runs:  # one step per poll, one run at a time
                if run["state"] in NEXT_STATE:
                    failing = run["logical_date"] in self.fail_dates and run["state"] == "running"
                    run["state"] = "failed" if failing else NEXT_STATE[run["state"]]
                    break
            return {"dag_runs": runs, "total_entries": len(runs)}


@pytest.fixture
def airflow(monkeypatch):
    fake = FakeAirflow()
    with serve(fake.app) as url:
        monkeypatch.setenv("OMS_AIRFLOW_PORT", url.rsplit(":", 1)[1])
        monkeypatch.setattr(cli, "BACKFILL_POLL_SECONDS", 0.01)
        yield fake


def test_dry_run_lists_the_runs_and_creates_nothing(airflow):
    result = runner.invoke(cli.app, ["backfill", "--all", "--from", "2026-03-05T10:00", "--to", "2026-03-05T10:45",
                                     "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "erp_stock_ingest: 4 run(s) 2026-03-05T10:00:00 … 2026-03-05T10:45:00" in flat(result)
    assert "magento_orders_ingest: 5 run(s)" in flat(result)
    assert "dry run: nothing created" in flat(result)
    assert [c[1] for c in airflow.calls] == ["/backfills/dry_run", "/backfills/dry_run"]  # a dry run needs no scheduler
    assert airflow.calls[0][2] == {"dag_id": "erp_stock_ingest", "from_date": "2026-03-05T10:00:00+00:00",
                                   "to_date": "2026-03-05T10:45:00+00:00", "reprocess_behavior": "failed"}
    assert airflow.backfills == {}


def test_backfill_shows_progress_until_airflow_completes_it(airflow):
    result = runner.invoke(cli.app, ["backfill", "--dag", "erp_stock_ingest", "--from", "2026-03-05T10:00Z",
                                     "--to", "2026-03-05T10:45Z", "--reprocess", "completed", "--max-active-runs", "3"])
    assert result.exit_code == 0, result.output
    created = [c[2] for c in airflow.calls if c[1] == "/backfills"]
    assert created == [{"dag_id": "erp_stock_ingest", "from_date": "2026-03-05T10:00:00+00:00",
                        "to_date": "2026-03-05T10:45:00+00:00", "reprocess_behavior": "completed",
                        "max_active_runs": 3}]
    assert all(r["state"] == "success" for r in airflow.runs["erp_stock_ingest"])
    assert airflow.backfills[1]["completed_at"] is not None
    polls = [c for c in airflow.calls if c[1] == "/dags/erp_stock_ingest/dagRuns"]
    assert len(polls) >= 8  # two steps for each of four runs: it waited for every one
    assert polls[0][2]["run_type"] == "backfill"
    assert "erp_stock_ingest (backfill 1)" in flat(result)
    assert "backfill done: erp_stock_ingest 4 run(s)" in flat(result)


def test_failed_runs_fail_the_command_and_say_what_to_do(airflow):
    airflow.fail_dates = {"2026-03-05T10:15:00Z"}
    result = runner.invoke(cli.app, ["backfill", "--dag", "erp_stock_ingest", "--from", "2026-03-05T10:00",
                                     "--to", "2026-03-05T10:30"])
    assert result.exit_code == 1
    assert "backfill finished with failed runs: {'erp_stock_ingest': 1}" in flat(result)
    assert "--reprocess failed" in flat(result)


def test_a_running_backfill_and_bad_arguments_are_clear_errors(airflow):
    airflow.busy = {"magento_orders_ingest"}
    result = runner.invoke(cli.app, ["backfill", "--dag", "magento_orders_ingest", "--from", "2026-03-05T10:00",
                                     "--to", "2026-03-05T10:30"])
    assert result.exit_code == 1
    assert "409 There is already a running backfill for dag magento_orders_ingest" in flat(result)
    bad = runner.invoke(cli.app, ["backfill", "--all", "--from", "2026-03-05T11:00", "--to", "2026-03-05T10:00"])
    assert bad.exit_code == 2 and "--from must be before --to" in flat(bad)
    bad = runner.invoke(cli.app, ["backfill", "--all", "--from", "yesterday", "--to", "2026-03-05T10:00"])
    assert bad.exit_code == 2 and "ISO" in flat(bad)
    assert runner.invoke(cli.app, ["backfill", "--from", "2026-03-05T10:00", "--to", "2026-03-05T11:00"]).exit_code == 2


def test_an_unreachable_airflow_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("OMS_AIRFLOW_PORT", str(free_port()))
    result = runner.invoke(cli.app, ["backfill", "--all", "--from", "2026-03-05T10:00", "--to", "2026-03-05T11:00"])
    assert result.exit_code == 1
    assert "Airflow is not reachable" in flat(result) and "oms up" in flat(result)


@pytest.mark.parametrize("command", [
    ["backfill", "--all", "--from", "2026-03-05T10:00", "--to", "2026-03-05T11:00"],
    ["pipeline", "run", "--timeout", "600"],
])
def test_no_live_scheduler_fails_fast_in_one_line(airflow, command):
    """Without a scheduler every run stays queued: the command says so at once instead of waiting."""
    airflow.scheduler_beat = "2026-03-05T11:58:30.123456+00:00"
    result = runner.invoke(cli.app, command)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: no live Airflow scheduler: scheduler down since 2026-03-05 11:58:30 UTC")
    assert "oms up" in lines[0]
    assert [c[1] for c in airflow.calls] == ["/monitor/health"]  # nothing triggered, nothing created


def test_a_paused_pipeline_dag_fails_the_pipeline_run_in_one_line(airflow):
    """A paused DAG's runs stay queued and asset events do not start it, so `oms pipeline run` would
    wait for it until its timeout: it names the paused DAG at once and triggers nothing."""
    airflow.paused = {"kpi_build"}
    result = runner.invoke(cli.app, ["pipeline", "run", "--timeout", "600"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: paused in Airflow: kpi_build;")
    assert [c[1] for c in airflow.calls] == ["/monitor/health", "/dags"]  # nothing triggered
