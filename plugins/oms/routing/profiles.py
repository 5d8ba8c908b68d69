"""Routing profiles in Postgres: create a version (validated), activate it, list, read.

The version arithmetic and the "one active version per country" swap live in SQL functions
(sql/006_routing.sql) so the CLI (sync psycopg) and the API (async pool) share them: this module
exposes the statements and a sync wrapper for each; `api/routes/routing.py` runs the same
statements on its async connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from oms.errors import NotFound, Refused
from oms.routing.rules import ProfileSpec, RoutingProfile, format_errors

COLUMNS = ("profile_id, country_code, version, name, rules, settings, is_active, created_by, created_at, note, "
           "copied_from_version, activated_at, activated_by, deactivated_at")
CREATE_SQL = f"SELECT {COLUMNS} FROM oms.routing_profile_create(%(country)s, %(name)s, %(rules)s, %(note)s, %(by)s, NULL, %(settings)s)"
ACTIVATE_SQL = f"SELECT {COLUMNS} FROM oms.routing_profile_activate(%(country)s, %(version)s, %(by)s)"
LIST_SQL = f"""SELECT {COLUMNS} FROM oms.routing_profile
               WHERE (%(country)s::text IS NULL OR country_code = %(country)s) AND (is_active OR NOT %(active_only)s)
               ORDER BY country_code, version DESC"""
ACTIVE_SQL = f"SELECT {COLUMNS} FROM oms.routing_profile WHERE country_code = %(country)s AND is_active"
VERSION_SQL = f"SELECT {COLUMNS} FROM oms.routing_profile WHERE country_code = %(country)s AND version = %(version)s"
REFERENCE_SQL = """
SELECT EXISTS (SELECT 1 FROM ref.channel WHERE country_code = %(country)s) AS country_known,
       coalesce((SELECT array_agg(x ORDER BY x) FROM unnest(%(ids)s::text[]) x
                 WHERE NOT EXISTS (SELECT 1 FROM ref.location l WHERE l.store_id = x AND l.country_code = %(country)s)),
                '{}') AS unknown_locations
"""


class ProfileError(Refused, ValueError):
    """A profile that cannot be stored or activated; `problems` lists each reason."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid routing profile: " + "; ".join(problems), code="invalid_routing_profile",
                         details={"problems": problems})
        self.problems = problems


class ProfileNotFound(NotFound, LookupError):
    code = "unknown_profile_version"


def parse_spec(data: Mapping[str, Any] | ProfileSpec) -> ProfileSpec:
    """Validate a profile document; raises ProfileError with one line per problem."""
    if isinstance(data, ProfileSpec):
        return data
    try:
        return ProfileSpec.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(format_errors(exc)) from exc


def reference_problems(country_known: bool, unknown_locations: list[str], country: str) -> list[str]:
    problems = []
    if not country_known:
        problems.append(f"country_code: unknown country {country!r} (no sales channel in ref.channel)")
    if unknown_locations:
        problems.append(f"rules: location(s) {unknown_locations} are not locations of {country} in ref.location")
    return problems


def create_params(spec: ProfileSpec, created_by: str) -> dict[str, Any]:
    return {"country": spec.country_code, "name": spec.name, "note": spec.note, "by": created_by,
            "settings": Jsonb(spec.settings()),
            "rules": Jsonb([r.model_dump(mode="json", exclude_defaults=False) for r in spec.rules])}


def _q(conn: psycopg.Connection, sql: str, params: Mapping[str, Any]) -> psycopg.Cursor:
    return conn.cursor(row_factory=dict_row).execute(sql, params)


def row_to_profile(row: Mapping[str, Any]) -> RoutingProfile:
    return RoutingProfile.model_validate(dict(row))


def create_version(conn: psycopg.Connection, data: Mapping[str, Any] | ProfileSpec, created_by: str,
                   activate: bool = False) -> RoutingProfile:
    """Store a validated profile as the country's next version (inactive unless `activate`)."""
    spec = parse_spec(data)
    ref = _q(conn, REFERENCE_SQL, {"country": spec.country_code, "ids": sorted(spec.location_ids())}).fetchone()
    problems = reference_problems(ref["country_known"], list(ref["unknown_locations"]), spec.country_code)
    if problems:
        raise ProfileError(problems)
    with conn.transaction():
        row = _q(conn, CREATE_SQL, create_params(spec, created_by)).fetchone()
        if activate:
            row = _q(conn, ACTIVATE_SQL, {"country": spec.country_code, "version": row["version"],
                                              "by": created_by}).fetchone()
    return row_to_profile(row)


def activate(conn: psycopg.Connection, country: str, version: int, activated_by: str) -> RoutingProfile:
    """Make `version` the country's active profile (a version active before is copied first)."""
    try:
        with conn.transaction():
            row = _q(conn, ACTIVATE_SQL, {"country": country.upper(), "version": version,
                                              "by": activated_by}).fetchone()
    except psycopg.errors.NoDataFound as exc:
        raise ProfileNotFound(str(exc).splitlines()[0]) from exc
    return row_to_profile(row)


def list_versions(conn: psycopg.Connection, country: str | None = None, active_only: bool = False) -> list[RoutingProfile]:
    rows = _q(conn, LIST_SQL, {"country": country.upper() if country else None, "active_only": active_only}).fetchall()
    return [row_to_profile(r) for r in rows]


def get_active(conn: psycopg.Connection, country: str) -> RoutingProfile | None:
    row = _q(conn, ACTIVE_SQL, {"country": country.upper()}).fetchone()
    return row_to_profile(row) if row else None


def get_version(conn: psycopg.Connection, country: str, version: int) -> RoutingProfile:
    row = _q(conn, VERSION_SQL, {"country": country.upper(), "version": version}).fetchone()
    if row is None:
        raise ProfileNotFound(f"no routing profile version {version} for {country.upper()}")
    return row_to_profile(row)


def spec_document(profile: RoutingProfile) -> dict[str, Any]:
    """The editable document of a version (what `profile create --file` takes)."""
    return ProfileSpec.model_validate(profile.model_dump(include={"country_code", "name", "note", "rules", "mode",
                                                                  "batch"})) \
        .model_dump(mode="json", exclude_none=True)
