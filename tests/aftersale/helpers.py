"""Helpers of the after-sale tests."""

from __future__ import annotations

import pytest

from .data import DBT_TARGET


def rebuild_marts(dsn: str) -> dict:
    from oms.tasks import atp_build as atp

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMS_DBT_TARGET_PATH", str(DBT_TARGET))
        return atp.build(dsn, "aftersale-rebuild", None)
