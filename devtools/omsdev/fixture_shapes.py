"""Compare the project's payload samples (tests/fixtures) with the vendors' reference samples.

The tests read only tests/fixtures: the vendors' documented samples rewritten with values of our
own. When a vendor sample is added or changes, this says where ours no longer has its shape:
a file missing on either side, a key missing or extra, a leaf of another JSON type, a list of
another length, or a sample that parses on one side and not on the other (the *.invalid-json.txt
quirks must stay broken). Exit status 1 on any difference.

    python -m omsdev.fixture_shapes ../shared/fixtures tests/fixtures
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SAMPLE_SUFFIXES = frozenset({".json", ".txt"})  # not the folder's README.md


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return type(value).__name__


def differences(reference: Any, ours: Any, path: str = "$") -> Iterator[str]:
    if _kind(reference) != _kind(ours):
        yield f"{path}: {_kind(reference)} in the reference, {_kind(ours)} here"
    elif isinstance(reference, dict) and len(reference) == len(ours) and not reference.keys() & ours.keys():
        # keyed by data (Clickpost's track-order result maps each waybill to its status): compare in order
        for (key, a), b in zip(reference.items(), ours.values(), strict=True):
            yield from differences(a, b, f"{path}[{key!r}]")
    elif isinstance(reference, dict):
        for key in reference.keys() - ours.keys():
            yield f"{path}: key {key!r} missing"
        for key in ours.keys() - reference.keys():
            yield f"{path}: key {key!r} not in the reference"
        for key in reference.keys() & ours.keys():
            yield from differences(reference[key], ours[key], f"{path}.{key}")
    elif isinstance(reference, list):
        if len(reference) != len(ours):
            yield f"{path}: {len(reference)} items in the reference, {len(ours)} here"
        for i, (a, b) in enumerate(zip(reference, ours, strict=False)):
            yield from differences(a, b, f"{path}[{i}]")


def _parse(path: Path) -> tuple[bool, Any]:
    try:
        return True, json.loads(path.read_text())
    except json.JSONDecodeError:
        return False, None


def compare(reference_dir: Path, ours_dir: Path) -> list[str]:
    problems: list[str] = []
    names = {p.name for p in reference_dir.iterdir() if p.suffix in SAMPLE_SUFFIXES}
    mine = {p.name for p in ours_dir.iterdir() if p.suffix in SAMPLE_SUFFIXES}
    problems += [f"{name}: missing here" for name in sorted(names - mine)]
    problems += [f"{name}: not in the reference" for name in sorted(mine - names)]
    for name in sorted(names & mine):
        (ref_ok, ref), (our_ok, our) = _parse(reference_dir / name), _parse(ours_dir / name)
        if ref_ok != our_ok:
            problems.append(f"{name}: {'parses' if ref_ok else 'does not parse'} in the reference, not here")
        elif ref_ok:
            problems += [f"{name}: {d}" for d in differences(ref, our)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the vendors' samples, e.g. ../shared/fixtures")
    parser.add_argument("ours", type=Path, nargs="?", default=Path("tests/fixtures"))
    args = parser.parse_args(argv)
    problems = compare(args.reference, args.ours)
    for line in problems:
        print(line)
    print(f"{len(problems)} difference(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
