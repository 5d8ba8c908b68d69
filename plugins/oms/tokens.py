"""Local API bearer tokens with scopes. Only a SHA-256 of each secret is stored."""

from __future__ import annotations

import hashlib
import secrets

import psycopg
from psycopg.rows import tuple_row

SCOPES = {
    "stock:read": "read ATP and stock positions (Magento's stock look-ups)",
    "orders:read": "read orders, exceptions and routing decisions",
    "kpis:read": "read fulfilment KPIs (GET /v1/kpis, the KPI page at /dashboard)",
    "erp:write": "post ERP stock movements and acknowledge sales postings",
    "store": "store staff and POS of the store(s) the token names (--store): their pick / click & collect tasks "
             "(accept, pack, reject, ready, picked up), returns and exchanges (the ERP/POS token with erp:write "
             "may record returns at any store)",
    "orders:write": "push Magento orders (POST /v1/magento/orders: an Adobe Commerce webhook or observer module)",
    "admin": "everything, including reference data",
}
TOKEN_PREFIX = "oms_"


class UnknownScope(ValueError):
    pass


class StoreBindingError(ValueError):
    """A `store` token without a store, or a store binding on a token without the `store` scope."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: psycopg.Connection, name: str, scopes: list[str], stores: list[str] | None = None) -> str:
    """A new token. A `store` token acts for the stores it names only (every one must be a known
    location); the API answers 403 for any other store id (api/auth.py, require_store)."""
    unknown = sorted(set(scopes) - SCOPES.keys())
    if unknown or not scopes:
        raise UnknownScope(f"unknown scope(s) {unknown or '(none given)'}; choose from {sorted(SCOPES)}")
    stores = sorted({s.strip() for s in stores or [] if s.strip()})
    if "store" in scopes and not stores:
        raise StoreBindingError("a `store` token acts for named stores only: add --store STORE_ID (repeatable)")
    if stores and "store" not in scopes:
        raise StoreBindingError("--store applies to tokens with the `store` scope")
    if stores:
        with conn.cursor(row_factory=tuple_row) as cur:
            known = {r[0] for r in cur.execute("SELECT store_id FROM ref.location WHERE store_id = ANY(%s)",
                                               (stores,)).fetchall()}
        if missing := [s for s in stores if s not in known]:
            raise StoreBindingError(f"unknown store(s) {missing}: see `oms store list`")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO oms.api_token (name, token_sha256, scopes, store_ids) VALUES (%s, %s, %s, %s)",
        (name, hash_token(token), sorted(set(scopes)), stores or None),
    )
    return token


def revoke_token(conn: psycopg.Connection, name: str) -> int:
    return conn.execute(
        "UPDATE oms.api_token SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL", (name,)
    ).rowcount


def grants(token_scopes: set[str], needed: str) -> bool:
    return "admin" in token_scopes or needed in token_scopes


# A token's store binding travels with its scopes (one cached set per token) as marker entries.
STORE_MARK = "store_id="


def with_stores(scopes: list[str], store_ids: list[str] | None) -> frozenset[str]:
    return frozenset(scopes) | {STORE_MARK + s for s in store_ids or []}


def acts_for_store(token_scopes: set[str] | frozenset[str], store_id: str) -> bool:
    """May this token act for `store_id` on a store route? admin: any store; a token naming
    stores: those only; a token without the `store` scope (the ERP/POS with erp:write): any."""
    if "admin" in token_scopes:
        return True
    named = {s[len(STORE_MARK):] for s in token_scopes if s.startswith(STORE_MARK)}
    if named:
        return store_id in named
    # a `store` token made before tokens named their stores acts for none
    return "store" not in token_scopes or "erp:write" in token_scopes
