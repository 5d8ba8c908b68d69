"""`oms pipeline run`: triggers both ingest DAGs for the window, then waits for the atp_build run
that started once both had landed. Against a stand-in for Airflow's REST API (the real one needs
the running stack; the DAGs themselves are tested through dag.test())."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms.ops import dag_runs as pipeline_runner
from oms.ops.dag_runs import run_pipeline

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
END = START + timedelta(minutes=10)
LANDED = {"erp_stock_ingest": "2026-03-02T12:00:05Z", "magento_orders_ingest": "2026-03-02T12:00:20Z"}


class FakeAirflow:
    """Ingest runs succeed at once and emit their asset events at LANDED. atp_build ran once
    between the two events (consuming the ERP one) and once after both: the second event arrived
    while the first run held max_active_runs, so Airflow folded it into the next run."""

    def __init__(self, ingest_states: dict[str, str], builds: list[dict] | None = None):
        self.ingest_states = ingest_states
        self.triggered: list[tuple[str, dict]] = []
        self.builds = builds if builds is not None else [
            {"dag_run_id": "asset__after_both", "run_type": "asset_triggered", "start_date": "2026-03-02T12:00:31Z"},
            {"dag_run_id": "hourly", "run_type": "scheduled", "start_date": "2026-03-02T12:00:25Z"},
            {"dag_run_id": "asset__after_erp", "run_type": "asset_triggered", "start_date": "2026-03-02T12:00:09Z"},
            {"dag_run_id": "asset__queued", "run_type": "asset_triggered", "start_date": None},
        ]

    def trigger(self, dag_id, conf=None, **interval):
        self.triggered.append((dag_id, interval))
        return {"dag_run_id": f"manual__{dag_id}"}

    def dag_run(self, dag_id, run_id):
        return {"dag_run_id": run_id, "state": self.ingest_states.get(dag_id, "success"),
                "data_interval_start": START.isoformat(), "data_interval_end": END.isoformat(),
                "end_date": "2026-03-02T12:00:40Z"}

    def dag_runs(self, dag_id, limit=20):
        assert dag_id == "atp_build"
        return self.builds

    def asset_events(self, source_dag_id, source_run_id):
        assert source_run_id == f"manual__{source_dag_id}"
        return [{"timestamp": LANDED[source_dag_id]}]

    def task_instances(self, dag_id, run_id):
        return [{"task_id": "validate", "state": "success"}]

    def xcom(self, dag_id, run_id, task_id):
        return {"task": task_id}


def test_runs_both_ingests_for_the_window_then_the_build_that_started_after_both():
    api = FakeAirflow({})
    reports = run_pipeline(api, START, END, timeout=5, downstream=())
    assert [dag_id for dag_id, _ in api.triggered] == ["erp_stock_ingest", "magento_orders_ingest"]
    assert all(interval == {"logical_date": END.isoformat(), "data_interval_start": START.isoformat(),
                            "data_interval_end": END.isoformat()} for _, interval in api.triggered)
    assert [(r.dag_id, r.run_id) for r in reports] == [
        ("erp_stock_ingest", "manual__erp_stock_ingest"), ("magento_orders_ingest", "manual__magento_orders_ingest"),
        ("atp_build", "asset__after_both")]


def test_a_failed_ingest_is_not_waited_for():
    api = FakeAirflow({"magento_orders_ingest": "failed"})
    reports = run_pipeline(api, START, END, timeout=5, downstream=())
    assert [(r.dag_id, r.state) for r in reports] == [
        ("erp_stock_ingest", "success"), ("magento_orders_ingest", "failed"), ("atp_build", "success")]
    assert reports[-1].run_id == "asset__after_erp"  # the first build that started after the ERP data


def test_no_build_after_the_data_times_out(monkeypatch):
    api = FakeAirflow({}, builds=[
        {"dag_run_id": "asset__after_erp", "run_type": "asset_triggered", "start_date": "2026-03-02T12:00:09Z"}])
    monkeypatch.setattr(pipeline_runner.time, "sleep", lambda seconds: None)
    with pytest.raises(TimeoutError, match="atp_build was not scheduled"):
        run_pipeline(api, START, END, timeout=0, downstream=())


class FakeAirflowWithConsumers(FakeAirflow):
    """The build emits marts.atp at 12:01:00; the publish and order routing both start from it
    (12:01:02 and 12:01:03). The publish ends at 12:01:30 and emits nothing; routing emits
    oms.routing_decision at 12:01:10, which starts the KPI build at 12:01:11."""

    RUNS = {"magento_stock_publish": "asset__publish", "order_routing": "asset__routing", "kpi_build": "asset__kpis"}
    STARTED = {"magento_stock_publish": "2026-03-02T12:01:02Z", "order_routing": "2026-03-02T12:01:03Z",
               "kpi_build": "2026-03-02T12:01:11Z"}

    def dag_runs(self, dag_id, limit=20):
        if dag_id in self.RUNS:
            return [{"dag_run_id": self.RUNS[dag_id], "run_type": "asset_triggered", "start_date": self.STARTED[dag_id]}]
        return super().dag_runs(dag_id, limit)

    def dag_run(self, dag_id, run_id):
        run = super().dag_run(dag_id, run_id)
        return {**run, "end_date": "2026-03-02T12:01:30Z"} if dag_id == "magento_stock_publish" else run

    def asset_events(self, source_dag_id, source_run_id):
        if source_dag_id == "atp_build":
            return [{"timestamp": "2026-03-02T12:01:00Z"}]
        if source_dag_id == "order_routing":
            return [{"timestamp": "2026-03-02T12:01:10Z"}]
        if source_dag_id in self.RUNS:
            return []
        return super().asset_events(source_dag_id, source_run_id)


def test_order_routing_is_awaited_after_the_build_not_after_the_publish(monkeypatch):
    monkeypatch.setattr(pipeline_runner.time, "sleep", lambda seconds: None)
    reports = run_pipeline(FakeAirflowWithConsumers({}), START, END, timeout=5)
    assert [(r.dag_id, r.run_id) for r in reports][-3:] == [
        ("magento_stock_publish", "asset__publish"), ("order_routing", "asset__routing"), ("kpi_build", "asset__kpis")]
    # chained after the publish instead, the routing run (started before the publish ended) is never found
    with pytest.raises(TimeoutError, match="order_routing"):
        run_pipeline(FakeAirflowWithConsumers({}), START, END, timeout=0,
                     downstream=(("magento_stock_publish", "publish_source_items", "atp_build"),
                                 ("order_routing", "route_orders", "magento_stock_publish")))
