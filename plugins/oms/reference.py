"""Reference data an admin changes without a deploy: channels (one per country), locations, SKUs.

Every write is an upsert on the natural key, so loading the same file twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from oms.warehouse import scratch_table


class Channel(BaseModel):
    model_config = ConfigDict(extra="ignore")
    channel_code: str = Field(min_length=1, max_length=40)
    country_code: str = Field(pattern=r"^[A-Z]{2}$")
    name: str
    currency_code: str = Field(pattern=r"^[A-Z]{3}$")
    magento_website_code: str
    magento_store_code: str
    magento_stock_id: int = Field(gt=0)
    magento_store_id: int | None = Field(default=None, ge=0, description="store_id Magento stamps on the channel's orders")
    buffer_qty: float = Field(default=0, ge=0)
    active: bool = True


class Location(BaseModel):
    model_config = ConfigDict(extra="ignore")
    store_id: str = Field(min_length=1, max_length=20, description="the ERP's location code")
    name: str
    country_code: str = Field(pattern=r"^[A-Z]{2}$")
    location_type: Literal["warehouse", "store"]
    address_line: str | None = None
    city: str | None = None
    postcode: str | None = None
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    phone: str | None = None
    email: str | None = None
    ship_from_store: bool = False
    pickup_enabled: bool = False
    magento_source_code: str | None = None
    active: bool = True

    def source_code(self) -> str:
        return self.magento_source_code or self.store_id.lower()


class Sku(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sku: str = Field(min_length=1, max_length=64)
    name: str
    category: str | None = None
    product_type: str = "simple"
    is_stock_managed: bool = True
    weight_g: int | None = Field(default=None, ge=0)
    active: bool = True


def upsert_channels(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    channels = [Channel.model_validate(r) for r in rows]
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO ref.channel (channel_code, country_code, name, currency_code, magento_website_code,
                                     magento_store_code, magento_stock_id, magento_store_id, buffer_qty, active)
            VALUES (%(channel_code)s, %(country_code)s, %(name)s, %(currency_code)s, %(magento_website_code)s,
                    %(magento_store_code)s, %(magento_stock_id)s, %(magento_store_id)s, %(buffer_qty)s, %(active)s)
            ON CONFLICT (channel_code) DO UPDATE SET
                country_code = excluded.country_code, name = excluded.name,
                currency_code = excluded.currency_code, magento_website_code = excluded.magento_website_code,
                magento_store_code = excluded.magento_store_code, magento_stock_id = excluded.magento_stock_id,
                magento_store_id = excluded.magento_store_id, buffer_qty = excluded.buffer_qty, active = excluded.active, updated_at = now()
            """,
            [c.model_dump() for c in channels],
        )
    return len(channels)


def upsert_locations(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    locations = [Location.model_validate(r) for r in rows]
    payload = [{**loc.model_dump(), "magento_source_code": loc.source_code()} for loc in locations]
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO ref.location (store_id, name, country_code, location_type, address_line, city, postcode,
                                      latitude, longitude, phone, email, ship_from_store, pickup_enabled,
                                      magento_source_code, active)
            VALUES (%(store_id)s, %(name)s, %(country_code)s, %(location_type)s, %(address_line)s, %(city)s,
                    %(postcode)s, %(latitude)s, %(longitude)s, %(phone)s, %(email)s, %(ship_from_store)s,
                    %(pickup_enabled)s, %(magento_source_code)s, %(active)s)
            ON CONFLICT (store_id) DO UPDATE SET
                name = excluded.name, country_code = excluded.country_code,
                location_type = excluded.location_type, address_line = excluded.address_line,
                city = excluded.city, postcode = excluded.postcode, latitude = excluded.latitude,
                longitude = excluded.longitude, phone = excluded.phone, email = excluded.email,
                ship_from_store = excluded.ship_from_store, pickup_enabled = excluded.pickup_enabled,
                magento_source_code = excluded.magento_source_code, active = excluded.active,
                updated_at = now()
            """,
            payload,
        )
    return len(locations)


def upsert_skus(conn: psycopg.Connection, rows: Iterable[Mapping[str, Any]]) -> int:
    skus = [Sku.model_validate(r).model_dump() for r in rows]
    if not skus:
        return 0
    with conn.cursor() as cur:
        scratch_table(cur, "_sku_in", "LIKE ref.sku INCLUDING DEFAULTS")
        with cur.copy(
            "COPY _sku_in (sku, name, category, product_type, is_stock_managed, weight_g, active) FROM STDIN"
        ) as copy:
            for s in skus:
                copy.write_row(
                    (s["sku"], s["name"], s["category"], s["product_type"], s["is_stock_managed"],
                     s["weight_g"], s["active"])
                )
        cur.execute(
            """
            INSERT INTO ref.sku (sku, name, category, product_type, is_stock_managed, weight_g, active)
            SELECT sku, name, category, product_type, is_stock_managed, weight_g, active FROM _sku_in
            ON CONFLICT (sku) DO UPDATE SET
                name = excluded.name, category = excluded.category, product_type = excluded.product_type,
                is_stock_managed = excluded.is_stock_managed, weight_g = excluded.weight_g,
                active = excluded.active, updated_at = now()
            """
        )
    return len(skus)


def upsert_safety_rule(
    conn: psycopg.Connection, safety_qty: float, store_id: str | None = None,
    sku: str | None = None, category: str | None = None,
) -> None:
    conn.execute(
        """
        INSERT INTO ref.safety_stock_rule (store_id, sku, category, safety_qty)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (coalesce(store_id, ''), coalesce(sku, ''), coalesce(category, ''))
        DO UPDATE SET safety_qty = excluded.safety_qty
        """,
        (store_id, sku, category, safety_qty),
    )
