"""dbt's parse cache is dropped when the project's macros change (dbt's partial parse does not
re-render generic tests for a changed override of one of its own macros), and kept otherwise."""

from __future__ import annotations

from oms.transform import _forget_parse_on_macro_change


def test_the_parse_cache_goes_when_the_macros_change_and_stays_otherwise(tmp_path):
    cache = tmp_path / "partial_parse.msgpack"
    cache.write_bytes(b"parsed")
    _forget_parse_on_macro_change(tmp_path)          # no digest yet: a cache of unknown macros
    assert not cache.exists()

    cache.write_bytes(b"parsed")
    _forget_parse_on_macro_change(tmp_path)          # same macros: the cache stays
    assert cache.exists()

    (tmp_path / "macros.sha256").write_text("the digest of other macros")
    _forget_parse_on_macro_change(tmp_path)
    assert not cache.exists()
