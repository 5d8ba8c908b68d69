"""The production package stands apart from the development tooling.

`plugins/oms`, `api/` and `dags/` (what the production image ships) import nothing from `omsdev`
(sandboxes, demo data, demo, local stack) nor from a test tool; the runtime dependency set has no
test tools. Read from the source's import statements, so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import re
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
# what every DAG file may share: its assets, default args and schedule (written once in oms.schedules)
DAG_SHARED = {"oms.assets", "oms.dag_defaults", "oms.schedules"}


def oms_imports_of_dag(path: Path) -> set[str]:
    """The oms modules a DAG file imports, `from oms.tasks import x` counted as oms.tasks.x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "oms":
            if node.module in ("oms", "oms.tasks"):   # `from oms import schedules` is oms.schedules
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
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


# Code and docs say what a thing is, not which work item asked for it: a reference like that means
# nothing to the next reader and goes stale once the item is closed.
WORK_ITEM = re.compile(r"\bissues?\s?#?\d+", re.IGNORECASE)
NAMED_ROOTS = ("plugins", "api", "dags", "sql", "dbt/models", "devtools", "bench", "docs", "tests", "deploy")
NAMED_FILES = ("README.md", "dbt/README.md", "Makefile", "Dockerfile", "docker-compose.yml", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".sql", ".md", ".yml", ".yaml", ".toml", ".sh", ".cfg", ".ini", ".txt", ""}


def work_item_references(paths) -> list[str]:
    found = []
    for path in paths:
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or "results" in path.parts:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if WORK_ITEM.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:80]}")
    return found


def test_code_and_docs_name_no_work_items():
    paths = [REPO / f for f in NAMED_FILES]
    for root in NAMED_ROOTS:
        paths += sorted(p for p in (REPO / root).rglob("*") if "__pycache__" not in p.parts)
    assert work_item_references(paths) == []


def test_work_item_check_sees_a_reference(tmp_path):
    note = REPO / "docs" / ".work-item-probe.md"
    try:
        heading = "# Returns (" + "issue" + " 6)"   # spelled apart, or this file would be found
        note.write_text(heading + "\n")
        assert work_item_references([note]) == [f"docs/.work-item-probe.md:1: {heading}"]
    finally:
        note.unlink()
