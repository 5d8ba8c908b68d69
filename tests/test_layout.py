"""The production package stands apart from the development tooling.

`plugins/oms`, `api/` and `dags/` (what the production image ships) import nothing from `omsdev`
(sandboxes, demo data, demo, local stack) nor from a test tool; the runtime dependency set has no
test tools. Read from the source's import statements, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCTION = [REPO / "plugins" / "oms", REPO / "api", REPO / "dags"]
DEV_ONLY = ("omsdev", "pytest", "hypothesis", "playwright", "aiosmtpd", "ruff", "tests", "bench")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_production_code_imports_no_dev_tooling():
    offenders = []
    for root in PRODUCTION:
        for path in sorted(root.rglob("*.py")):
            for name in imported_modules(path):
                if name.split(".")[0] in DEV_ONLY:
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_import_check_sees_lazy_imports(tmp_path):
    # The check above must catch an import hidden in a function body, or it proves nothing.
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from omsdev.sandbox import server\n    import pytest\n")
    assert imported_modules(sample) == {"omsdev.sandbox", "pytest"}


def test_runtime_dependencies_have_no_test_tools():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {dep.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
               for dep in project["dependencies"]}
    assert runtime.isdisjoint({"pytest", "pytest-timeout", "hypothesis", "playwright", "aiosmtpd", "ruff"})
    pinned = {line.split("==")[0].lower() for line in (REPO / "requirements-runtime.lock").read_text().splitlines()
              if "==" in line and not line.startswith(" ")}
    assert pinned.isdisjoint({"pytest", "hypothesis", "playwright", "aiosmtpd", "ruff"})


def test_production_image_installs_runtime_only():
    dockerfile = (REPO / "Dockerfile").read_text()
    runtime_stage = "\n".join(line for line in dockerfile.split("FROM runtime AS sandboxes")[0].splitlines()
                              if not line.lstrip().startswith("#"))
    assert "requirements-runtime.lock" in runtime_stage
    assert "requirements.lock" not in runtime_stage.replace("requirements-runtime.lock", "")
    assert "devtools" not in runtime_stage and "COPY bench" not in runtime_stage
    # The default target (the last stage) is the platform, not the sandboxes.
    assert dockerfile.rstrip().splitlines()[-1].startswith("FROM runtime AS platform")


DAGS = REPO / "dags"
DAG_SHARED = {"oms.assets", "oms.dag_defaults"}


def oms_imports_of_dag(path: Path) -> set[str]:
    """The oms modules a DAG file imports, `from oms.tasks import x` counted as oms.tasks.x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "oms":
            if node.module == "oms.tasks":
                names.update(f"oms.tasks.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.split(".")[0] == "oms")
    return names


def test_every_dag_calls_one_task_module():
    # dags/ stay thin: schedule, graph and docs; what a task does (connections included) is in
    # one oms.tasks module per DAG file.
    offenders = {}
    for path in sorted(DAGS.glob("*.py")):
        modules = oms_imports_of_dag(path) - DAG_SHARED
        if len(modules) != 1 or not next(iter(modules)).startswith("oms.tasks."):
            offenders[path.name] = sorted(modules)
    assert offenders == {}


def test_task_module_check_sees_domain_imports(tmp_path):
    # A DAG reaching past its task module into domain code must be seen, or the check proves nothing.
    sample = tmp_path / "sample_dag.py"
    sample.write_text("def t():\n    from oms.tasks import kpi_build as tasks\n    from oms.shipping import tracking\n")
    assert oms_imports_of_dag(sample) == {"oms.tasks.kpi_build", "oms.shipping"}
