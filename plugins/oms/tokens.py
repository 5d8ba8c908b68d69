"""Local API bearer tokens with scopes. Only a SHA-256 of each secret is stored."""

from __future__ import annotations

import hashlib
import secrets

import psycopg

SCOPES = {
    "stock:read": "read ATP and stock positions (Magento's stock look-ups)",
    "orders:read": "read orders, exceptions and routing decisions",
    "kpis:read": "read fulfilment KPIs (GET /v1/kpis, the KPI page at /dashboard)",
    "erp:write": "post ERP stock movements and acknowledge sales postings",
    "store": "store staff and POS: a store's pick / click & collect tasks (accept, pack, reject, ready, picked up), "
             "returns and exchanges (the ERP/POS token with erp:write may record returns too)",
    "admin": "everything, including reference data",
}
TOKEN_PREFIX = "oms_"


class UnknownScope(ValueError):
    pass


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: psycopg.Connection, name: str, scopes: list[str]) -> str:
    unknown = sorted(set(scopes) - SCOPES.keys())
    if unknown or not scopes:
        raise UnknownScope(f"unknown scope(s) {unknown or '(none given)'}; choose from {sorted(SCOPES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO oms.api_token (name, token_sha256, scopes) VALUES (%s, %s, %s)",
        (name, hash_token(token), sorted(set(scopes))),
    )
    return token


def revoke_token(conn: psycopg.Connection, name: str) -> int:
    return conn.execute(
        "UPDATE oms.api_token SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,)
    ).rowcount


def grants(token_scopes: set[str], needed: str) -> bool:
    return "admin" in token_scopes or needed in token_scopes
