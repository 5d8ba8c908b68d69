"""`oms pipeline run`: triggers both ingest DAGs for the window, then follows their asset events to
the atp_build run(s) that consumed them. Against a stand-in for Airflow's REST API (the real one
needs the running stack; the DAGs themselves are tested through dag.test())."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms import pipeline_runner
from oms.pipeline_runner import run_pipeline

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=10)


class FakeAirflow:
    """Ingest runs succeed at once; the scheduler made one atp_build run per asset event, the way
    it does when the second event arrives while the first run is already queued."""

    def __init__(self, ingest_states: dict[str, str]):
        self.ingest_states = ingest_states
        self.triggered: list[tuple[str, dict]] = []
        self.later = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")

    def trigger(self, dag_id, conf=None, **interval):
        self.triggered.append((dag_id, interval))
        return {"dag_run_id": f"manual__{dag_id}"}

    def dag_run(self, dag_id, run_id):
        state = self.ingest_states.get(dag_id, "success")
        return {"dag_run_id": run_id, "state": state, "data_interval_start": START.isoformat(),
                "data_interval_end": END.isoformat()}

    def dag_runs(self, dag_id, limit=20):
        assert dag_id == "atp_build"
        return [
            {"dag_run_id": "asset__2", "run_type": "asset_triggered", "run_after": self.later},
            {"dag_run_id": "asset__1", "run_type": "asset_triggered", "run_after": self.later},
            {"dag_run_id": "hourly", "run_type": "scheduled", "run_after": self.later},
            {"dag_run_id": "asset__old", "run_type": "asset_triggered", "run_after": "2020-01-01T00:00:00Z"},
        ]

    def upstream_asset_events(self, dag_id, run_id):
        source = {"asset__1": "erp_stock_ingest", "asset__2": "magento_orders_ingest"}[run_id]
        return [{"source_dag_id": source, "source_run_id": f"manual__{source}"}]

    def task_instances(self, dag_id, run_id):
        return [{"task_id": "validate", "state": "success"}]

    def xcom(self, dag_id, run_id, task_id):
        return {"task": task_id}


def test_runs_both_ingests_for_the_window_then_every_build_that_consumed_them():
    api = FakeAirflow({})
    reports = run_pipeline(api, START, END, timeout=5)
    assert [dag_id for dag_id, _ in api.triggered] == ["erp_stock_ingest", "magento_orders_ingest"]
    assert all(interval == {"logical_date": END.isoformat(), "data_interval_start": START.isoformat(),
                            "data_interval_end": END.isoformat()} for _, interval in api.triggered)
    assert [(r.dag_id, r.run_id) for r in reports] == [
        ("erp_stock_ingest", "manual__erp_stock_ingest"), ("magento_orders_ingest", "manual__magento_orders_ingest"),
        ("atp_build", "asset__2"), ("atp_build", "asset__1")]


def test_a_failed_ingest_is_not_waited_for():
    api = FakeAirflow({"magento_orders_ingest": "failed"})
    reports = run_pipeline(api, START, END, timeout=5)
    assert [(r.dag_id, r.state) for r in reports] == [
        ("erp_stock_ingest", "success"), ("magento_orders_ingest", "failed"), ("atp_build", "success")]
    assert reports[-1].run_id == "asset__1"


def test_no_build_scheduled_times_out(monkeypatch):
    api = FakeAirflow({})
    monkeypatch.setattr(api, "upstream_asset_events", lambda dag_id, run_id: [])
    monkeypatch.setattr(pipeline_runner.time, "sleep", lambda seconds: None)
    with pytest.raises(TimeoutError, match="atp_build was not scheduled"):
        run_pipeline(api, START, END, timeout=0)
