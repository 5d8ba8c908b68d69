"""The payload samples in tests/fixtures: each parses as the vendor's does, and the two that the
vendors' docs print as broken JSON stay broken for the documented reason only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omsdev.fixture_shapes import compare, differences

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# file -> the one defect the vendor's doc has, and how a lenient reader gets past it
QUIRKS = {
    "clickpost_v3_create_order_request_cod.invalid-json.txt": (
        "a '#' comment after a value",
        lambda text: json.loads(text.replace(" # Useful for whatsapp communication", "")),
    ),
    "clickpost_cancel_order_error_response.invalid-json.txt": (
        "a raw newline inside a string",
        lambda text: json.loads(text, strict=False),
    ),
}


def test_every_json_sample_parses() -> None:
    samples = sorted(FIXTURES.glob("*.json"))
    assert len(samples) >= 40
    for path in samples:
        json.loads(path.read_text())


@pytest.mark.parametrize("name", sorted(QUIRKS))
def test_invalid_json_samples_keep_their_one_defect(name: str) -> None:
    text = (FIXTURES / name).read_text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    _, lenient = QUIRKS[name]
    assert isinstance(lenient(text), dict)
    assert sorted(p.name for p in FIXTURES.glob("*.invalid-json.txt")) == sorted(QUIRKS)


def test_error_codes_kept() -> None:
    cancel = QUIRKS["clickpost_cancel_order_error_response.invalid-json.txt"][1](
        (FIXTURES / "clickpost_cancel_order_error_response.invalid-json.txt").read_text()
    )
    assert cancel["meta"]["status"] == 400 and cancel["meta"]["message"].startswith("8159:")
    failure = json.loads((FIXTURES / "clickpost_create_order_failure_319_response.json").read_text())
    assert failure["meta"]["status"] == 319 and failure["meta"]["success"] is False


def test_shape_comparison_names_each_difference(tmp_path: Path) -> None:
    reference = {"a": 1, "b": [{"c": "x"}, {"c": "y"}], "d": {"AWB1": {"e": True}}, "f": None}
    assert list(differences(reference, {"a": 2, "b": [{"c": "z"}, {"c": ""}], "d": {"AWB9": {"e": False}},
                                        "f": None})) == []
    found = list(differences(reference, {"a": "1", "b": [{"c": "x"}], "d": {"AWB9": {"e": 1}}, "g": None}))
    assert sorted(found) == sorted([
        "$.a: int in the reference, str here",
        "$.b: 2 items in the reference, 1 here",
        "$.d['AWB1'].e: bool in the reference, int here",
        "$: key 'f' missing",
        "$: key 'g' not in the reference",
    ])
    ref_dir, our_dir = tmp_path / "ref", tmp_path / "ours"
    ref_dir.mkdir()
    our_dir.mkdir()
    (ref_dir / "broken.invalid-json.txt").write_text('{"a": 1,}')
    (our_dir / "broken.invalid-json.txt").write_text('{"a": 1}')
    (ref_dir / "only_there.json").write_text("{}")
    assert compare(ref_dir, our_dir) == [
        "only_there.json: missing here",
        "broken.invalid-json.txt: does not parse in the reference, not here",
    ]
