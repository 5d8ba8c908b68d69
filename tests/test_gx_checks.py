"""oms.validation.gx: the failing records of a frame, as Great Expectations names them — and a
"this column is null" check over a column holding no value passes without GX (it cannot fail)."""

from __future__ import annotations

import pandas as pd
import pytest

from oms.validation.gx import Unexpected, unexpected_records

# Great Expectations itself runs here (seconds of import): not the unit tier's, and imported in the
# tests, not at collection (the unit tier collects this file too).
pytestmark = pytest.mark.integration

REASONS = ("missing_entity_id", "missing_items")


def _frame(*rows: tuple[str, dict]) -> pd.DataFrame:
    return pd.DataFrame([{"record_key": key, **{r: None for r in REASONS}, **row} for key, row in rows],
                        columns=["record_key", *REASONS]).astype(object)


def _null_checks():
    import great_expectations.expectations as gxe

    return [(reason, gxe.ExpectColumnValuesToBeNull(column=reason)) for reason in REASONS]


@pytest.fixture
def no_gx(monkeypatch):
    import great_expectations as gx

    def refuse(*args, **kwargs):
        raise AssertionError("GX's context was built for a frame with nothing to find")

    monkeypatch.setattr(gx, "get_context", refuse)


def test_a_frame_without_problem_values_passes_without_building_gx(no_gx):
    assert unexpected_records(_frame(("1@x", {}), ("2@x", {})), "shape", _null_checks()) == ([], True)


def test_a_problem_value_is_named_by_gx_and_fails_the_suite():
    failing, success = unexpected_records(
        _frame(("1@x", {}), ("2@x", {"missing_items": "items is empty"})), "shape", _null_checks())
    assert failing == [Unexpected("2@x", "missing_items", "missing_items", "items is empty")]
    assert success is False


def test_checks_other_than_null_checks_still_run_in_gx(no_gx):
    import great_expectations.expectations as gxe

    frame = _frame(("1@x", {}))
    frame["qty"] = [-1]
    with pytest.raises(AssertionError, match="GX's context was built"):
        unexpected_records(frame, "shape", [("negative_qty", gxe.ExpectColumnValuesToBeBetween(column="qty",
                                                                                              min_value=0))])
