"""Running dbt in-process (dbtRunner) against the warehouse.

In-process avoids a second interpreter start per task (setup-notes: 14 s vs 37 s for a task
group through a separate dbt executable). The profile reads the OMS_PG_* variables, set here
from the warehouse connection the caller passes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from oms.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt"


class DbtBuildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class NodeRun:
    """One node of a dbt invocation as dbt's run results tell it: what Airflow shows per model."""

    name: str
    resource_type: str
    status: str
    seconds: float
    rows_affected: int | None


@dataclass(frozen=True)
class DbtOutcome:
    command: str
    passed: int
    failed: int
    skipped: int
    nodes: dict[str, str]
    runs: tuple[NodeRun, ...] = ()

    def models(self) -> list[dict]:
        """Per model: status, seconds and rows written, slowest first (the task's return value,
        so the Airflow UI's XCom tab shows what each model cost in this run)."""
        models = [r for r in self.runs if r.resource_type in {"model", "snapshot", "seed"}]
        models.sort(key=lambda r: r.seconds, reverse=True)
        return [{"model": r.name, "status": r.status, "seconds": round(r.seconds, 2), "rows": r.rows_affected}
                for r in models]


def profile_env(dsn: str) -> dict[str, str]:
    url = urlparse(dsn)
    return {
        "OMS_PG_HOST": url.hostname or "127.0.0.1",
        "OMS_PG_PORT": str(url.port or 5432),
        "OMS_PG_USER": url.username or "oms",
        "OMS_PG_PASSWORD": url.password or "",
        "OMS_WAREHOUSE_DB": url.path.lstrip("/"),
    }


@contextmanager
def _profile_environment(dsn: str, extra: dict[str, str] | None = None) -> Iterator[None]:
    """profiles.yml reads OMS_PG_*; set them (and `extra`) for this invocation only, so the caller's
    own settings (which read the same variables) are not redirected to dbt's database afterwards."""
    values = {**profile_env(dsn), **(extra or {})}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _files_digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.relative_to(DBT_PROJECT_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def dbt_project_digest() -> str:
    """A digest of the dbt project's code (models, macros, tests, project and selector files):
    what a build deploys. A build that leaves out the views (dbt/selectors.yml) is due only
    after a build that created them from the same code (oms.tasks.atp_build.full_build_due)."""
    paths = [path for folder in ("models", "macros", "tests") for path in (DBT_PROJECT_DIR / folder).rglob("*")
             if path.is_file()]
    return _files_digest(paths + [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "selectors.yml"])


def _forget_parse_on_macro_change(target: Path) -> None:
    """dbt's partial parse does not re-render the generic tests when a macro they call (an
    override of one of dbt's own, such as get_where_subquery) is added or changed: they fail
    with "'<macro>' is undefined" until the project is parsed whole. The macros' digest is kept
    beside the parse cache, and a new digest drops the cache (one full parse, then partial again)."""
    digest = _files_digest(list((DBT_PROJECT_DIR / "macros").rglob("*.sql")))
    stamp = target / "macros.sha256"
    if not stamp.exists() or stamp.read_text() != digest:
        (target / "partial_parse.msgpack").unlink(missing_ok=True)
        target.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)


def run_dbt(dsn: str, command: str, *args: str, target_path: Path | None = None,
            env: dict[str, str] | None = None) -> DbtOutcome:
    from dbt.cli.main import dbtRunner

    target = target_path or Path(os.environ.get("OMS_DBT_TARGET_PATH", REPO_ROOT / ".oms" / "dbt-target"))
    _forget_parse_on_macro_change(target)
    cli_args = [
        command,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(target),
        "--log-path", str(target / "logs"),
        *args,
    ]
    with _profile_environment(dsn, env):
        result = dbtRunner().invoke(cli_args)
    nodes: dict[str, str] = {}
    runs: list[NodeRun] = []
    if result.result is not None and hasattr(result.result, "results"):
        for node_result in result.result.results:
            nodes[node_result.node.unique_id] = str(node_result.status)
            rows = (node_result.adapter_response or {}).get("rows_affected")
            runs.append(NodeRun(node_result.node.name, str(node_result.node.resource_type), str(node_result.status),
                                float(node_result.execution_time or 0.0), rows if isinstance(rows, int) else None))
    failed = sum(status in {"error", "fail", "runtime error"} for status in nodes.values())
    outcome = DbtOutcome(
        command=" ".join(cli_args[:1] + list(args)),
        passed=sum(status in {"success", "pass"} for status in nodes.values()),
        failed=failed,
        skipped=sum(status == "skipped" for status in nodes.values()),
        nodes=nodes,
        runs=tuple(runs),
    )
    if not result.success:
        detail = result.exception or [n for n, s in nodes.items() if s in {"error", "fail", "runtime error", "skipped"}]
        raise DbtBuildFailed(f"dbt {command} failed: {detail}")
    return outcome
