"""`make bench`'s runner (bench/run_all.py), without running a benchmark: the plan per scale, and
one step run for real (a tiny script writing a result file) measured and summarised."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_run_all", REPO / "bench" / "run_all.py")
run_all = importlib.util.module_from_spec(spec)
sys.modules["bench_run_all"] = run_all  # dataclasses look their module up
spec.loader.exec_module(run_all)


def test_the_plan_follows_the_scale(capsys):
    assert run_all.main(["--scale", "medium", "--dry-run"]) == 0
    lines = {line.split(":", 1)[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == {"atp_lookup", "reservations", "publish_100k", "publish_lag"}
    assert "--skus 50000 --stores-per-country 50 --pg-port 5560" in lines["atp_lookup"]
    assert "OMS_PG_PORT=5560" in lines["publish_100k"]
    assert "skipped without --with-stack" in lines["publish_lag"]
    for line in lines.values():  # every script it runs exists
        script = next(part for part in line.split() if part.startswith("bench/"))
        assert (REPO / script).is_file(), script


def test_a_step_is_timed_measured_and_summarised(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all, "RESULTS", tmp_path)
    writer = (f"import json, pathlib; x = bytearray(64 * 1024 * 1024); "
              f"pathlib.Path({str(tmp_path)!r}, 'fake-20260101T000000Z.json').write_text("
              f"json.dumps({{'summary': [{{'p99_ms': 4.25, 'rps': 1200, 'ok': True}}], 'when': 'x'}}))")
    outcome = run_all.run_step(run_all.Step("fake", [sys.executable, "-c", writer]))
    assert outcome.exit_code == 0
    assert outcome.result_file.endswith("fake-20260101T000000Z.json")
    assert outcome.figures == {"0.p99_ms": 4.25, "0.rps": 1200}
    assert outcome.peak_rss_mib >= 64  # the 64 MiB the script held

    failing = run_all.run_step(run_all.Step("fails", [sys.executable, "-c", "raise SystemExit(3)"]))
    assert (failing.exit_code, failing.result_file, failing.figures) == (3, None, {})
    assert json.loads(json.dumps(run_all.asdict(failing)))["exit_code"] == 3
