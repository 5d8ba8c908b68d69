"""Running a list of Great Expectations checks over a DataFrame and naming the failing records.

Each check is (reason, expectation). GX runs ephemerally on the frame in COMPLETE result format,
so every failing record is known by its key column; the caller turns (key, reason, value) into a
quarantine or exception entry.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Unexpected:
    key: str
    reason: str
    column: str
    value: Any


def unexpected_records(
    frame: pd.DataFrame, asset_name: str, checks: Sequence[tuple[str, Any]], key_column: str = "record_key"
) -> tuple[list[Unexpected], bool]:
    """Validate the frame with every check; returns the failing records and the suite's verdict."""
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    batch = (
        context.data_sources.add_pandas(asset_name)
        .add_dataframe_asset(f"{asset_name}_window")
        .add_batch_definition_whole_dataframe("window")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    failing: list[Unexpected] = []
    success = True
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": [key_column]}
    for reason, expectation in checks:
        result = batch.validate(expectation, result_format=result_format)
        success &= bool(result.success)
        column = expectation.column
        for item in result.result.get("unexpected_index_list") or []:
            failing.append(Unexpected(item[key_column], reason, column, item.get(column)))
    return failing, success
