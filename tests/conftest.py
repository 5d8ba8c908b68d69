"""Test harness: the project's own Postgres (a test cluster on its own port and state folder),
real Airflow (`dag.test()` on a metadata DB in that cluster), real sandboxes over HTTP.

Everything a test needs is configured here through OMS_* variables *before* anything reads the
settings, so a running demo stack (default ports, .oms/) is never touched by the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# `make test` runs the suite on pytest-xdist workers (gw0, gw1, …). Each worker is a session of its
# own: its own test cluster, state folder, Airflow metadata DB, sandboxes and API ports, 1000 ports
# above the previous worker's, so nothing is shared between them but the checkout.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_INDEX = int(_WORKER.removeprefix("gw")) if _WORKER.startswith("gw") else 0
TEST_STATE = REPO / ".oms" / ("test" if _WORKER_INDEX == 0 else f"test-{_WORKER}")

# OMS_TEST_PORT_OFFSET lets several checkouts (worktrees) run their suites side by side.
_OFFSET = int(os.environ.get("OMS_TEST_PORT_OFFSET", "0")) + 1000 * _WORKER_INDEX
TEST_ENV = {
    "OMS_STATE_DIR": str(TEST_STATE),
    # every dbt run without a target of its own parses and compiles here, one folder per worker
    "OMS_DBT_TARGET_PATH": str(TEST_STATE / "dbt-target"),
    "OMS_PG_PORT": str(5546 + _OFFSET),
    "OMS_WAREHOUSE_DB": "oms_test",
    "OMS_AIRFLOW_DB": "airflow_test",
    "OMS_API_PORT": str(18000 + _OFFSET),
    "OMS_MAGENTO_PORT": str(18101 + _OFFSET),
    "OMS_CLICKPOST_PORT": str(18102 + _OFFSET),
    "OMS_ERP_PORT": str(18103 + _OFFSET),
    "OMS_SMS_PORT": str(18104 + _OFFSET),
    "OMS_SMTP_PORT": str(18125 + _OFFSET),
    "GX_ANALYTICS_ENABLED": "False",
    "TQDM_DISABLE": "1",
}
os.environ.update(TEST_ENV)

from oms.settings import Settings  # noqa: E402  (after the environment is set)
from oms.warehouse import apply_ddl  # noqa: E402
from omsdev.stack import postgres, processes  # noqa: E402
from omsdev.stack.airflow_config import airflow_env as _airflow_env  # noqa: E402

# Airflow reads its configuration once, when first imported — which may be at collection, by any
# module that imports the DAGs' assets — so its environment is set before any test module loads.
os.environ.update(_airflow_env(Settings()))


# Test tiers (pyproject.toml registers the markers). A test is marked by the fixtures it uses, so a
# new test lands in the right tier without anyone remembering to mark it; a mark set by hand (a test
# that parses the DAGs or the dbt project without these fixtures) wins over "unit".
#   unit         pure logic: no Postgres, no Airflow, no dbt — `make test-fast`
#   integration  the project's Postgres cluster, the sandboxes over HTTP, a dbt parse or build
#   e2e          DAGs run through real Airflow (a metadata DB in the test cluster)
E2E_FIXTURES = frozenset({"airflow_env"})
INTEGRATION_FIXTURES = frozenset({"pg_cluster", "warehouse_dsn", "sandboxes"})
TIERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        marked = {m.name for m in item.iter_markers() if m.name in TIERS}
        by_fixtures = "e2e" if used & E2E_FIXTURES else "integration" if used & INTEGRATION_FIXTURES else "unit"
        # a unit mark on a test that needs more would let the heavy test into the fast tier
        if "unit" in marked and by_fixtures != "unit":
            raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {by_fixtures} fixtures")
        tier = max({by_fixtures, *marked}, key=TIERS.index)  # one tier each: the heaviest that applies
        if tier not in marked:
            item.add_marker(tier)
    # Under `make test` the workers take whole files in collection order. Files with a test that runs
    # for minutes go first, then by their heaviest tier, so the short unit tests fill the gaps at the
    # end instead of one worker starting a long test while the other has nothing left. The order of
    # the tests within a file is kept (the sort is stable and its key is the file's).
    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    has_long: dict[str, bool] = {}
    heaviest: dict[str, int] = {}
    for item in items:
        tier = max(TIERS.index(t) for t in TIERS if item.get_closest_marker(t))
        has_long[file_of(item)] = has_long.get(file_of(item), False) or item.get_closest_marker("long") is not None
        heaviest[file_of(item)] = max(heaviest.get(file_of(item), 0), tier)
    items.sort(key=lambda item: (not has_long[file_of(item)], -heaviest[file_of(item)]))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The fast tier stays fast: a run of only unit tests that imported Airflow or dbt fails, naming
    the cure (mark the test integration, or keep the import out of pure logic)."""
    if session.config.option.markexpr.strip() != "unit" or session.testscollected == 0:
        return
    heavy = sorted(m for m in ("airflow", "dbt", "great_expectations", "cosmos") if m in sys.modules)
    if heavy:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"unit tier imported {', '.join(heavy)}: mark the test that needs it "
                "@pytest.mark.integration, or keep the import out of the code it tests",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def pg_cluster(settings: Settings):
    """The project's test cluster: started if needed, stopped at the end if this session started it."""
    data_dir = postgres.data_dir(settings)
    was_running = postgres.is_running(data_dir)
    postgres.init_cluster(data_dir, settings.pg_user)
    postgres.start(data_dir, settings.pg_port, settings.pg_host, durable=False)
    yield settings
    if "airflow.settings" in sys.modules:  # close Airflow's pooled connections before the server goes
        sys.modules["airflow.settings"].dispose_orm()
    if not was_running:
        postgres.stop(data_dir)


def fresh_database(settings: Settings, name: str) -> str:
    admin = settings.dsn("postgres")
    postgres.drop_database(admin, name)
    postgres.ensure_database(admin, name)
    return settings.dsn(name)


@pytest.fixture(scope="session")
def warehouse_dsn(pg_cluster: Settings) -> str:
    """A fresh warehouse database for the session, with the DDL applied."""
    dsn = fresh_database(pg_cluster, pg_cluster.warehouse_db)
    apply_ddl(dsn)
    os.environ["OMS_TEST_WAREHOUSE_DSN"] = dsn
    return dsn


@pytest.fixture(scope="session")
def airflow_env(pg_cluster: Settings, warehouse_dsn: str):
    """Airflow configured on a fresh metadata DB in the test cluster, connections from config."""
    from omsdev.stack.airflow_config import airflow_env as build_env

    fresh_database(pg_cluster, pg_cluster.airflow_db)
    env = build_env(pg_cluster)
    os.environ.update(env)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env={**os.environ}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return env


@pytest.fixture(scope="session")
def sandboxes(pg_cluster: Settings):
    """The three sandboxes as `oms up` runs them: one real process, real HTTP on loopback."""
    from omsdev.stack import control

    service = control.sandbox_service(pg_cluster)
    control.start_service(pg_cluster, service, timeout=60)
    yield pg_cluster
    processes.stop(pg_cluster.state_dir, service.name)
