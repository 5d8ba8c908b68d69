"""`make bench` (issue 8 §1, skeleton): run the bench scripts at one scale, print one table and write
bench/results/bench.json. Not a test; takes minutes (small) to hours (large).

    make bench SCALE=small                      # 5k SKUs x 20 stores
    .venv/bin/python bench/run_all.py --scale medium --dry-run
    .venv/bin/python bench/run_all.py --scale small --only atp_lookup,reservations

Each script runs as its own process, in this order (later ones reuse the bench cluster that
atp_lookup starts on --pg-port, .oms/bench):
  atp_lookup     catalogue load (COPY), dbt ATP build, API look-up p50/p99 and req/s vs a bare app
  reservations   reservation strategies under contention (on atp_lookup's database)
  publish_100k   delta publish of changed source items to the Magento sandbox; unchanged re-sent
  publish_lag    ERP movement -> Magento sandbox lag (needs the demo stack: only with --with-stack)
Per script: wall time, exit code, peak RSS of the script's own process (from wait4; servers it
starts in processes of their own are measured by the script itself where it reports them), and the
headline figures of the JSON file it wrote. Figures issue 8 asks for that no script measures yet are
listed as `not measured` rows, so the gaps show in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PG_PORT = 5560

# SKUs x stores (stores = stores per country x 2 countries, plus one warehouse per country).
SCALES = {
    "small": {"skus": 5_000, "stores_per_country": 10},
    "medium": {"skus": 50_000, "stores_per_country": 50},
    "large": {"skus": 100_000, "stores_per_country": 100},
}
NOT_MEASURED = (
    "ingestion rate (Magento orders, ERP stock) vs raw COPY",
    "incremental ATP rebuild after a 1 % change",
    "routing throughput and split/cost quality vs nearest stock",
)


@dataclass
class Step:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    needs_stack: bool = False


@dataclass
class Outcome:
    name: str
    command: str
    exit_code: int | None
    seconds: float
    peak_rss_mib: float | None
    result_file: str | None
    figures: dict[str, Any]


def plan(scale: str, pg_port: int = PG_PORT, seconds: int = 10) -> list[Step]:
    size = SCALES[scale]
    python = sys.executable
    bench_dsn = f"postgresql://oms@127.0.0.1:{pg_port}/oms_bench"
    return [
        Step("atp_lookup", [python, "bench/atp_lookup.py", "--skus", str(size["skus"]), "--stores-per-country",
                            str(size["stores_per_country"]), "--pg-port", str(pg_port), "--seconds", str(seconds)]),
        Step("reservations", [python, "bench/reservations.py", "--dsn", bench_dsn]),
        # publish_100k reads the cluster from the settings: point them at the bench cluster.
        # its defaults make >= 100k changed source items (the figure); small is a quick look
        Step("publish_100k", [python, "bench/publish_100k.py",
                              *(["--skus", "2000", "--stores", "5"] if scale == "small" else [])],
             env={"OMS_PG_PORT": str(pg_port), "OMS_STATE_DIR": str(REPO / ".oms" / "bench")}),
        Step("publish_lag", [python, "bench/publish_lag.py"], needs_stack=True),
    ]


def newest_result(name: str, since: float) -> Path | None:
    found = [p for p in RESULTS.glob(f"{name}-*.json") if p.stat().st_mtime >= since]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def headline(value: Any, prefix: str = "", limit: int = 12) -> dict[str, Any]:
    """The first scalar figures of a result file, flattened (summary first when there is one)."""
    if isinstance(value, dict) and "summary" in value:
        value = value["summary"]
    flat: dict[str, Any] = {}

    def walk(item: Any, path: str) -> None:
        if len(flat) >= limit:
            return
        if isinstance(item, dict):
            for key, sub in item.items():
                walk(sub, f"{path}{key}.")
        elif isinstance(item, list):
            for n, sub in enumerate(item[:3]):
                walk(sub, f"{path}{n}.")
        elif isinstance(item, int | float) and not isinstance(item, bool):
            flat[path.rstrip(".")] = round(item, 3) if isinstance(item, float) else item

    walk(value, prefix)
    return flat


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def run_step(step: Step) -> Outcome:
    started_wall, started = time.time(), time.perf_counter()
    process = subprocess.Popen(step.argv, cwd=REPO, env={**os.environ, **step.env})
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    result = newest_result(step.name, started_wall)
    figures = headline(json.loads(result.read_text())) if result else {}
    return Outcome(step.name, shlex.join(step.argv[1:]), process.returncode, round(seconds, 1),
                   round(usage.ru_maxrss / 1024, 1), _shown(result) if result else None, figures)


def stop_bench_cluster(pg_port: int) -> None:
    os.environ["OMS_STATE_DIR"] = str(REPO / ".oms" / "bench")
    sys.path[:0] = [str(REPO / "plugins"), str(REPO)]
    from oms.settings import Settings
    from oms.stack import postgres

    postgres.stop(Settings(pg_port=pg_port).pg_data_dir)


def print_table(scale: str, outcomes: list[Outcome]) -> None:
    print(f"\nbench at scale {scale} ({SCALES[scale]['skus']:,} SKUs x "
          f"{SCALES[scale]['stores_per_country'] * 2} stores)")
    print(f"{'step':<14} {'exit':>4} {'seconds':>8} {'peak MiB':>9}  figures")
    for o in outcomes:
        shown = ", ".join(f"{k}={v}" for k, v in list(o.figures.items())[:6]) or "-"
        exit_code = "skip" if o.exit_code is None else o.exit_code
        print(f"{o.name:<14} {exit_code:>4} {o.seconds:>8} {o.peak_rss_mib or '-':>9}  {shown}")
    for gap in NOT_MEASURED:
        print(f"{'-':<14} {'':>4} {'':>8} {'':>9}  not measured yet: {gap}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--only", help="comma-separated step names")
    parser.add_argument("--with-stack", action="store_true", help="also the steps needing `make demo` running")
    parser.add_argument("--pg-port", type=int, default=PG_PORT)
    parser.add_argument("--seconds", type=int, default=10, help="load duration of each API run")
    parser.add_argument("--keep-cluster", action="store_true", help="leave the bench cluster running")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench.json")
    args = parser.parse_args(argv)

    steps = plan(args.scale, args.pg_port, args.seconds)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {s.name for s in steps}
        if unknown:
            parser.error(f"unknown step(s) {sorted(unknown)}; choose from {[s.name for s in steps]}")
        steps = [s for s in steps if s.name in wanted]
    if args.dry_run:
        for step in steps:
            note = "  (skipped without --with-stack)" if step.needs_stack and not args.with_stack else ""
            env = " ".join(f"{k}={v}" for k, v in step.env.items())
            print(f"{step.name}: {env + ' ' if env else ''}{shlex.join(step.argv)}{note}")
        return 0

    RESULTS.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    outcomes = []
    try:
        for step in steps:
            if step.needs_stack and not args.with_stack:
                outcomes.append(Outcome(step.name, shlex.join(step.argv[1:]), None, 0.0, None, None,
                                        {"skipped": "needs the demo stack (--with-stack)"}))
                continue
            print(f"== {step.name}: {shlex.join(step.argv[1:])}", flush=True)
            outcomes.append(run_step(step))
    finally:
        if not args.keep_cluster and not args.dry_run:
            stop_bench_cluster(args.pg_port)
    print_table(args.scale, outcomes)
    args.out.write_text(json.dumps({
        "scale": args.scale, **SCALES[args.scale], "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "steps": [asdict(o) for o in outcomes], "not_measured": list(NOT_MEASURED),
    }, indent=2))
    print(f"wrote {args.out}")
    return 0 if all(o.exit_code in (0, None) for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
