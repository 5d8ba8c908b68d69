"""Deterministic demo data for the OMS: GCC countries, stores and warehouses, an apparel catalogue,
ERP stock rows and Magento orders.

Same arguments, same output: every random choice comes from ``random.Random`` seeded from ``seed``,
and stock quantities come from a hash of (seed, location, SKU), so a SKU keeps its stock when the
catalogue grows and any slice of ``iter_stock_rows`` can be regenerated on its own. Catalogue and
locations are prefix-stable too: ``skus=200`` is the first 200 SKUs of ``skus=50_000``.

Scale: ``iter_stock_rows(skus=50_000, stores_per_country=50)`` streams 5.1M rows without holding
them; ``generate`` materialises everything and is meant for demo and test sizes.
"""

from __future__ import annotations

import copy
import itertools
import random
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_COUNTRIES = ("AE", "QA")
BAD_ROW_KINDS = (
    "negative_inventory",
    "non_numeric_inventory",
    "missing_location",
    "unknown_location",
    "unknown_sku",
)

# --- reference data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    name: str
    city: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class City:
    name: str
    latitude: float
    longitude: float
    postcode: str


@dataclass(frozen=True)
class CountrySpec:
    code: str
    name: str
    currency: str
    decimals: int  # KWD, BHD and OMR have 1000 fils
    aed_rate: float  # catalogue prices are set in AED and converted
    vat_rate: float
    phone_code: str
    website_code: str
    stock_id: int
    magento_store_id: int
    order_weight: float
    warehouse: Site
    malls: tuple[Site, ...]
    cities: tuple[City, ...]
    streets: tuple[str, ...]


# Scalars are named; mall and city coordinates are real-ish (city centres, mall locations).
# fmt: off
COUNTRIES: dict[str, CountrySpec] = {
    spec.code: spec
    for spec in (
        CountrySpec(
            code="AE", name="United Arab Emirates", currency="AED", decimals=2, aed_rate=1.0, vat_rate=0.05,
            phone_code="+971", website_code="ae", stock_id=2, magento_store_id=1, order_weight=0.40,
            warehouse=Site("Jebel Ali Distribution Centre", "Dubai", 25.0037, 55.0876),
            malls=(Site("Dubai Mall", "Dubai", 25.1985, 55.2796),
                   Site("Mall of the Emirates", "Dubai", 25.1181, 55.2003),
                   Site("Yas Mall", "Abu Dhabi", 24.4889, 54.6086),
                   Site("Ibn Battuta Mall", "Dubai", 25.0446, 55.1171),
                   Site("City Centre Deira", "Dubai", 25.2522, 55.3330),
                   Site("Dubai Festival City Mall", "Dubai", 25.2218, 55.3532),
                   Site("The Galleria Al Maryah Island", "Abu Dhabi", 24.5005, 54.3877),
                   Site("City Centre Sharjah", "Sharjah", 25.3246, 55.4199),
                   Site("Al Ain Mall", "Al Ain", 24.2203, 55.7810)),
            cities=(City("Dubai", 25.2048, 55.2708, "00000"), City("Abu Dhabi", 24.4539, 54.3773, "00000"),
                    City("Sharjah", 25.3463, 55.4209, "00000"), City("Al Ain", 24.2075, 55.7447, "00000")),
            streets=("Sheikh Zayed Road", "Al Wasl Road", "Jumeirah Beach Road", "Hamdan Street", "Corniche Road"),
        ),
        CountrySpec(
            code="QA", name="Qatar", currency="QAR", decimals=2, aed_rate=0.9913, vat_rate=0.0,
            phone_code="+974", website_code="qa", stock_id=3, magento_store_id=2, order_weight=0.15,
            warehouse=Site("Doha Industrial Area Warehouse", "Doha", 25.1960, 51.4440),
            malls=(Site("Doha Festival City", "Umm Salal", 25.3717, 51.4407),
                   Site("Villaggio Mall", "Doha", 25.2606, 51.4433),
                   Site("City Center Doha", "Doha", 25.3258, 51.5290),
                   Site("Mall of Qatar", "Al Rayyan", 25.3263, 51.3453),
                   Site("Place Vendome", "Lusail", 25.4127, 51.4990),
                   Site("Lagoona Mall", "Doha", 25.3700, 51.5410),
                   Site("Tawar Mall", "Doha", 25.3236, 51.4868)),
            cities=(City("Doha", 25.2854, 51.5310, "00000"), City("Al Rayyan", 25.2919, 51.4244, "00000"),
                    City("Lusail", 25.4200, 51.4900, "00000"), City("Al Wakrah", 25.1716, 51.6034, "00000")),
            streets=("Al Corniche Street", "Salwa Road", "C Ring Road", "Al Waab Street", "Lusail Expressway"),
        ),
        CountrySpec(
            code="KW", name="Kuwait", currency="KWD", decimals=3, aed_rate=0.0837, vat_rate=0.0,
            phone_code="+965", website_code="kw", stock_id=4, magento_store_id=3, order_weight=0.10,
            warehouse=Site("Shuwaikh Industrial Warehouse", "Kuwait City", 29.3375, 47.9385),
            malls=(Site("The Avenues", "Kuwait City", 29.3034, 47.9331),
                   Site("360 Mall", "Kuwait City", 29.2668, 47.9938),
                   Site("Marina Mall", "Salmiya", 29.3407, 48.0671),
                   Site("Al Kout Mall", "Fahaheel", 29.0829, 48.1341),
                   Site("Assima Mall", "Kuwait City", 29.3736, 47.9886)),
            cities=(City("Kuwait City", 29.3759, 47.9774, "13001"), City("Salmiya", 29.3339, 48.0759, "22000"),
                    City("Hawalli", 29.3328, 48.0286, "30000"), City("Fahaheel", 29.0825, 48.1303, "64000")),
            streets=("Gulf Road", "Salem Al Mubarak Street", "Fahad Al Salem Street", "Tunis Street"),
        ),
        CountrySpec(
            code="SA", name="Saudi Arabia", currency="SAR", decimals=2, aed_rate=1.0211, vat_rate=0.15,
            phone_code="+966", website_code="sa", stock_id=5, magento_store_id=4, order_weight=0.20,
            warehouse=Site("Riyadh Logistics Park", "Riyadh", 24.6086, 46.8486),
            malls=(Site("Riyadh Park", "Riyadh", 24.7562, 46.6297),
                   Site("Kingdom Centre", "Riyadh", 24.7114, 46.6744),
                   Site("Al Nakheel Mall", "Riyadh", 24.7720, 46.7119),
                   Site("Red Sea Mall", "Jeddah", 21.6262, 39.1106),
                   Site("Mall of Arabia", "Jeddah", 21.6334, 39.1564),
                   Site("Mall of Dhahran", "Dhahran", 26.3049, 50.1711)),
            cities=(City("Riyadh", 24.7136, 46.6753, "12211"), City("Jeddah", 21.4858, 39.1925, "23431"),
                    City("Dammam", 26.4207, 50.0888, "32241"), City("Dhahran", 26.2361, 50.0393, "34465")),
            streets=("King Fahd Road", "Olaya Street", "Tahlia Street", "Prince Sultan Road", "King Abdulaziz Road"),
        ),
        CountrySpec(
            code="BH", name="Bahrain", currency="BHD", decimals=3, aed_rate=0.1026, vat_rate=0.10,
            phone_code="+973", website_code="bh", stock_id=6, magento_store_id=5, order_weight=0.07,
            warehouse=Site("Bahrain Logistics Zone Warehouse", "Hidd", 26.2253, 50.6559),
            malls=(Site("City Centre Bahrain", "Manama", 26.2335, 50.5510),
                   Site("Seef Mall", "Manama", 26.2345, 50.5363),
                   Site("The Avenues Bahrain", "Manama", 26.2370, 50.5915),
                   Site("Oasis Mall Juffair", "Juffair", 26.2140, 50.6057)),
            cities=(City("Manama", 26.2285, 50.5860, "317"), City("Muharraq", 26.2572, 50.6119, "209"),
                    City("Riffa", 26.1300, 50.5550, "909"), City("Isa Town", 26.1736, 50.5478, "808")),
            streets=("Sheikh Khalifa bin Salman Highway", "Exhibition Avenue", "Budaiya Highway", "Road 2803"),
        ),
        CountrySpec(
            code="OM", name="Oman", currency="OMR", decimals=3, aed_rate=0.1048, vat_rate=0.05,
            phone_code="+968", website_code="om", stock_id=7, magento_store_id=6, order_weight=0.08,
            warehouse=Site("Rusayl Industrial Warehouse", "Muscat", 23.5544, 58.1846),
            malls=(Site("Muscat Grand Mall", "Muscat", 23.5889, 58.4073),
                   Site("Oman Avenues Mall", "Muscat", 23.5977, 58.3966),
                   Site("City Centre Muscat", "Seeb", 23.6003, 58.2446),
                   Site("Salalah Gardens Mall", "Salalah", 17.0086, 54.0586)),
            cities=(City("Muscat", 23.5880, 58.3829, "100"), City("Seeb", 23.6703, 58.1891, "111"),
                    City("Salalah", 17.0151, 54.0924, "211"), City("Sohar", 24.3461, 56.7075, "311")),
            streets=("Sultan Qaboos Street", "Al Khuwair Street", "18th November Street", "Muscat Expressway"),
        ),
    )
}
# fmt: on


@dataclass(frozen=True)
class Style:
    code: str
    name: str
    category: str
    variants: tuple[tuple[str, str], ...]  # colour (or shade/scent for beauty): (code, name)
    sizes: tuple[str, ...]
    weight_g: int
    price_aed: float


# fmt: off
COLOURS = (("BLK", "Black"), ("WHT", "White"), ("NVY", "Navy"), ("GRY", "Grey"), ("BEI", "Beige"),
           ("RED", "Red"), ("OLV", "Olive"), ("BLU", "Blue"))
SCENTS = (("OUD", "Oud"), ("AMB", "Amber"), ("ROS", "Rose"), ("MSK", "Musk"))
SHADES = (("RUB", "Ruby"), ("NUD", "Nude"), ("BRY", "Berry"))
SKIN_TYPES = (("NRM", "Normal Skin"), ("DRY", "Dry Skin"))
APPAREL = ("XS", "S", "M", "L", "XL")
WAIST = ("28", "30", "32", "34", "36")
SHOES = ("38", "39", "40", "41", "42", "43", "44", "45")
ONE_SIZE = ("OS",)
STYLES = (
    Style("TSHIRT", "Essential Crew T-Shirt", "apparel", COLOURS, APPAREL, 180, 59),
    Style("POLO", "Pique Polo Shirt", "apparel", COLOURS, APPAREL, 250, 99),
    Style("SHIRT", "Oxford Shirt", "apparel", COLOURS, APPAREL, 300, 149),
    Style("JEANS", "Slim Fit Jeans", "apparel", COLOURS[:4], WAIST, 650, 199),
    Style("CHINO", "Stretch Chino", "apparel", COLOURS[:5], WAIST, 500, 169),
    Style("DRESS", "Midi Wrap Dress", "apparel", COLOURS, APPAREL, 400, 229),
    Style("HOODIE", "Fleece Hoodie", "apparel", COLOURS, APPAREL, 600, 179),
    Style("ABAYA", "Everyday Abaya", "apparel", COLOURS[:3], APPAREL, 700, 349),
    Style("SNEAKER", "Court Sneaker", "footwear", COLOURS[:4], SHOES, 900, 299),
    Style("SANDAL", "Leather Sandal", "footwear", COLOURS[:3], SHOES, 500, 149),
    Style("LOAFER", "Suede Loafer", "footwear", COLOURS[:4], SHOES, 800, 259),
    Style("BOOT", "Chelsea Boot", "footwear", COLOURS[:2], SHOES, 1200, 399),
    Style("BELT", "Leather Belt", "accessories", COLOURS[:3], ("S", "M", "L"), 200, 89),
    Style("CAP", "Baseball Cap", "accessories", COLOURS, ONE_SIZE, 120, 49),
    Style("WALLET", "Bifold Wallet", "accessories", COLOURS[:3], ONE_SIZE, 150, 119),
    Style("TOTE", "Canvas Tote Bag", "accessories", COLOURS, ONE_SIZE, 350, 99),
    Style("SCARF", "Silk Scarf", "accessories", COLOURS, ONE_SIZE, 80, 129),
    Style("SUNGLASS", "Aviator Sunglasses", "accessories", COLOURS[:3], ONE_SIZE, 60, 249),
    Style("PERFUME", "Eau de Parfum", "beauty", SCENTS, ("50ML", "100ML"), 300, 299),
    Style("LIPSTICK", "Matte Lipstick", "beauty", SHADES, ONE_SIZE, 40, 79),
    Style("CREAM", "Hydrating Face Cream", "beauty", SKIN_TYPES, ("50ML",), 150, 119),
)
LINE_NAMES = ("", "Studio", "Heritage", "Urban", "Coastal", "Desert", "Marina", "Oasis")
FIRST_NAMES = ("Ahmed", "Fatima", "Mohammed", "Aisha", "Omar", "Layla", "Yousef", "Mariam", "Khalid", "Noura",
               "Rahul", "Priya", "Hassan", "Reem", "Faisal", "Sana", "Arjun", "Anna", "Tariq", "Dana", "Ali",
               "Huda", "James", "Sofia")
LAST_NAMES = ("Al Mansouri", "Al Hashimi", "Khan", "Haddad", "Nasser", "Saleh", "Rahman", "Farouk", "Menon",
              "Smith", "Kapoor", "Al Marri", "Qureshi", "Aziz", "Hamdan", "Ibrahim", "Darwish", "Fernandes",
              "Al Balushi", "Al Kuwari")
# fmt: on


def _interleave_by_category(styles: tuple[Style, ...]) -> tuple[Style, ...]:
    """Round-robin over categories so even a small catalogue has apparel, footwear, accessories
    and beauty (TSHIRT, SNEAKER, BELT, PERFUME, POLO, …)."""
    by_category: dict[str, list[Style]] = {}
    for style in styles:
        by_category.setdefault(style.category, []).append(style)
    columns = itertools.zip_longest(*by_category.values())
    return tuple(style for column in columns for style in column if style is not None)


CATALOGUE_ORDER = _interleave_by_category(STYLES)
PAYMENT_TITLES = {
    "checkout_com": "Credit / Debit Card (Checkout.com)",
    "cashondelivery": "Cash On Delivery",
    "checkmo": "Check / Money order",
}
VIRTUAL_PRODUCTS = (  # sku, name, product_type, price AED, product id
    ("GIFTWRAP-STD", "Gift Wrapping", "virtual", 15, 300001),
    ("LOOKBOOK-DIGITAL", "Digital Lookbook", "downloadable", 19, 300002),
)
FREE_SHIPPING_AED = 200
FLAT_RATE_AED = 15
COUPON = ("WELCOME10", 0.10)

# --- locations ------------------------------------------------------------------------------------


def _country_specs(countries: Sequence[str]) -> list[CountrySpec]:
    unknown = [c for c in countries if c not in COUNTRIES]
    if unknown:
        raise ValueError(f"unknown countries {unknown}; available: {sorted(COUNTRIES)}")
    return [COUNTRIES[c] for c in countries]


def _location(spec: CountrySpec, store_id: str, kind: str, site: Site, rng: random.Random) -> dict[str, Any]:
    city = next((c for c in spec.cities if c.name == site.city), spec.cities[0])
    is_store = kind == "store"
    return {
        "store_id": store_id,
        "name": site.name,
        "country_code": spec.code,
        "location_type": kind,
        "address_line": (
            f"Unit {rng.choice('GLF')}-{rng.randint(1, 250):03d}, {site.name}"
            if is_store
            else f"Plot {rng.randint(1, 900)}, {site.name}"
        ),
        "city": site.city,
        "postcode": city.postcode,
        "latitude": round(site.latitude, 6),
        "longitude": round(site.longitude, 6),
        "phone": f"{spec.phone_code} {rng.randint(2, 4)}{rng.randint(0, 9_999_999):07d}",
        "email": f"{store_id.lower()}@stores.example.com",
        # Warehouses always ship; most stores do, some are pickup/walk-in only.
        "ship_from_store": (not is_store) or rng.random() < 0.8,
        "pickup_enabled": is_store,
        "magento_source_code": store_id.lower(),
        "active": True,
    }


def build_locations(
    countries: Sequence[str] = DEFAULT_COUNTRIES, stores_per_country: int = 4, seed: int = 7
) -> list[dict[str, Any]]:
    """Per country one warehouse (``AE-WH-01``) then stores (``AE-ST-01``…): real malls first, then
    numbered stores around the country's cities once the malls run out."""
    locations = []
    for spec in _country_specs(countries):
        rng = random.Random(f"{seed}:locations:{spec.code}")
        locations.append(_location(spec, f"{spec.code}-WH-01", "warehouse", spec.warehouse, rng))
        for n in range(1, stores_per_country + 1):
            if n <= len(spec.malls):
                site = spec.malls[n - 1]
            else:
                city = spec.cities[(n - 1) % len(spec.cities)]
                site = Site(
                    f"{city.name} Store {n:02d}",
                    city.name,
                    city.latitude + rng.uniform(-0.05, 0.05),
                    city.longitude + rng.uniform(-0.05, 0.05),
                )
            locations.append(_location(spec, f"{spec.code}-ST-{n:02d}", "store", site, rng))
    return locations


# --- catalogue ------------------------------------------------------------------------------------


def iter_skus(count: int) -> Iterator[dict[str, Any]]:
    """Style lines × colours × sizes: colour-major, styles interleaved by category, so any prefix of
    the catalogue spans every category."""
    if count <= 0:
        return
    produced = 0
    widest = max(len(s.variants) for s in STYLES)
    for line in itertools.count(1):
        prefix = LINE_NAMES[line - 1] if line <= len(LINE_NAMES) else f"Edition {line}"
        for variant_index in range(widest):
            for style_index, style in enumerate(CATALOGUE_ORDER):
                if variant_index >= len(style.variants):
                    continue
                code, variant = style.variants[variant_index]
                style_code = style.code if line == 1 else f"{style.code}{line}"
                for size in style.sizes:
                    yield {
                        "sku": f"{style_code}-{code}-{size}",
                        "name": " ".join(p for p in (prefix, style.name, variant, size) if p),
                        "category": style.category,
                        "product_type": "simple",
                        "weight_g": style.weight_g,
                        "is_stock_managed": True,
                        "parent_sku": style_code,
                        "style_name": " ".join(p for p in (prefix, style.name) if p),
                        "variant": variant,
                        "size": size,
                        "price_aed": float(style.price_aed + 10 * ((line - 1) % 4)),
                        "product_id": produced + 1,
                        "_option_ids": (variant_index + 1, style.sizes.index(size) + 1, style_index),
                    }
                    produced += 1
                    if produced >= count:
                        return


def _configurable_parents(skus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    parents: dict[str, dict[str, Any]] = {}
    for sku in skus:
        if sku["category"] == "beauty":
            continue  # sold as simple products
        parent = parents.setdefault(
            sku["parent_sku"],
            {
                "sku": sku["parent_sku"],
                "name": sku["style_name"],
                "category": sku["category"],
                "product_type": "configurable",
                "is_stock_managed": False,
                "children": [],
                "product_id": 100_000 + len(parents) + 1,
            },
        )
        parent["children"].append(sku["sku"])
    return list(parents.values())


# --- stock ----------------------------------------------------------------------------------------

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread 64-bit hash (≈1 µs per row in pure Python)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _quantity(x: int, popularity: float, warehouse: bool) -> int:
    """Skewed on purpose: warehouses deep and rarely empty, stores mostly empty or a few units."""
    u1 = (x & 0xFFFFFFFF) / 4294967296.0
    u2 = (x >> 32) / 4294967296.0
    if warehouse:
        return 0 if u1 < 0.05 else int(10 + 390 * u2 * u2 * (0.5 + popularity))
    return 0 if u1 < 0.7 - 0.35 * popularity else 1 + int(u2 * u2 * (4 + 10 * popularity))


def _stock_rows(
    locations: list[dict[str, Any]], sku_codes: list[str], seed: int, stamp: str
) -> Iterator[dict[str, Any]]:
    hashes = [zlib.crc32(code.encode()) for code in sku_codes]
    popularity = [((h * 2654435761) & 0xFFFF) / 65536.0 for h in hashes]
    seed_mix = _mix(seed & _MASK)
    for location in locations:
        store_id = location["store_id"]
        warehouse = location["location_type"] == "warehouse"
        location_hash = zlib.crc32(store_id.encode())
        for code, h, pop in zip(sku_codes, hashes, popularity, strict=True):
            yield {
                "itemNumber": code,
                "locationCode": store_id,
                "variantCode": "",
                "inventory": _quantity(_mix((h << 32) ^ location_hash ^ seed_mix), pop, warehouse),
                "unitOfMeasureCode": "PCS",
                "lastModifiedDateTime": stamp,
            }


def _as_of(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso_z(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_stock_rows(
    skus: int = 200,
    stores_per_country: int = 4,
    seed: int = 7,
    *,
    as_of: datetime = DEFAULT_AS_OF,
    countries: Sequence[str] = DEFAULT_COUNTRIES,
) -> Iterator[dict[str, Any]]:
    """ERP ``locationInventory`` rows for every (location, SKU), location by location, streamed."""
    locations = build_locations(countries, stores_per_country, seed)
    codes = [s["sku"] for s in iter_skus(skus)]
    return _stock_rows(locations, codes, seed, _iso_z(_as_of(as_of)))


# --- orders ---------------------------------------------------------------------------------------


def _magento_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


class _OrderFactory:
    """Builds Magento orders in the ``GET /V1/orders/{id}`` shape; money is internally consistent
    (subtotal, discount, tax and grand total add up from the rows that carry money)."""

    def __init__(
        self,
        rng: random.Random,
        skus: list[dict[str, Any]],
        parents: list[dict[str, Any]],
        locations: list[dict[str, Any]],
        as_of: datetime,
    ) -> None:
        self.rng = rng
        self.as_of = as_of
        self.parents = {p["sku"]: p for p in parents}
        self.fashion = [s for s in skus if s["category"] != "beauty"] or skus
        self.beauty = [s for s in skus if s["category"] == "beauty"] or skus
        self.pickup_stores = {}
        for location in locations:
            if location["pickup_enabled"] and location["active"]:
                self.pickup_stores.setdefault(location["country_code"], []).append(location)
        self.item_ids = itertools.count(1)
        self.sequences: dict[str, itertools.count[int]] = {}

    def build(self, entity_id: int, spec: CountrySpec) -> dict[str, Any]:
        rng = self.rng
        created = self.as_of - timedelta(seconds=rng.randint(3600, 14 * 86400))
        age = int((self.as_of - created).total_seconds())
        updated = created + timedelta(seconds=rng.randint(0, min(2 * 86400, age)))
        created_s, updated_s = _magento_time(created), _magento_time(updated)
        method = rng.choices(list(PAYMENT_TITLES), weights=(55, 35, 10))[0]
        state = self._state(method)
        discount_pct = COUPON[1] if rng.random() < 0.15 else 0.0
        items = self._lines(entity_id, spec, discount_pct, created_s)
        d = spec.decimals
        money = [i for i in items if i.get("parent_item_id") is None]  # top-level rows carry the totals
        subtotal = round(sum(i["row_total"] for i in money), d)
        discount = -round(sum(i["discount_amount"] for i in money), d) or 0.0  # Magento: negative; never -0.0
        tax = round(sum(i["tax_amount"] for i in money), d)
        firstname, lastname = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{firstname}.{lastname}".lower().replace(" ", "") + f"{entity_id}@example.com"
        home = self._address(spec, entity_id, firstname, lastname, email)
        shipping = self._shipping(spec, home, subtotal)
        grand_total = round(subtotal + discount + tax + shipping["amount"], d)
        seq = self.sequences.setdefault(spec.code, itertools.count(1))
        guest = rng.random() < 0.3
        order: dict[str, Any] = {
            "base_currency_code": spec.currency,
            "base_discount_amount": discount,
            "base_grand_total": grand_total,
            "base_shipping_amount": shipping["amount"],
            "base_shipping_incl_tax": shipping["amount"],
            "base_subtotal": subtotal,
            "base_subtotal_incl_tax": round(subtotal + tax, d),
            "base_tax_amount": tax,
            "base_to_global_rate": 1,
            "base_to_order_rate": 1,
            "billing_address": home,
            "billing_address_id": home["entity_id"],
            "created_at": created_s,
            "customer_email": email,
            "customer_firstname": firstname,
            "customer_group_id": 0 if guest else 1,
            "customer_is_guest": 1 if guest else 0,
            "customer_lastname": lastname,
            "customer_note_notify": 1,
            "discount_amount": discount,
            "email_sent": 1,
            "entity_id": entity_id,
            "global_currency_code": spec.currency,
            "grand_total": grand_total,
            "increment_id": f"{spec.code}{next(seq):09d}",
            "is_virtual": 0,
            "order_currency_code": spec.currency,
            "protect_code": f"{rng.getrandbits(24):06x}",
            "quote_id": 50_000 + entity_id,
            "remote_ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "shipping_amount": shipping["amount"],
            "shipping_description": shipping["title"],
            "shipping_incl_tax": shipping["amount"],
            "state": state,
            "status": "pending" if state == "new" else state,
            "store_currency_code": spec.currency,
            "store_id": spec.magento_store_id,
            "store_name": f"{spec.name}\n{spec.name} Store\n{spec.name} English",
            "store_to_base_rate": 0,
            "store_to_order_rate": 0,
            "subtotal": subtotal,
            "subtotal_incl_tax": round(subtotal + tax, d),
            "tax_amount": tax,
            "total_due": grand_total,
            "total_item_count": len(money),
            "total_qty_ordered": sum(i["qty_ordered"] for i in money),
            "updated_at": updated_s,
            "weight": round(sum(i["row_weight"] for i in money), 3),
            "items": items,
            "payment": self._payment(method, entity_id, grand_total, shipping["amount"]),
        }
        if not guest:
            order["customer_id"] = 10_000 + zlib.crc32(email.encode()) % 90_000
        if discount:
            order.update(coupon_code=COUPON[0], discount_description=COUPON[0], applied_rule_ids="1")
        self._apply_state(order, state)
        _link_parents(items)
        order["status_histories"] = [
            {
                "comment": None,
                "created_at": updated_s,
                "entity_id": entity_id,
                "entity_name": "order",
                "is_customer_notified": 1,
                "is_visible_on_front": 0,
                "parent_id": entity_id,
                "status": order["status"],
            }
        ]
        order["extension_attributes"] = self._extension(spec, order, shipping, tax)
        return order

    def _shipping(self, spec: CountrySpec, home: dict[str, Any], subtotal: float) -> dict[str, Any]:
        """Click & collect at a pickup store of the country (ships to the store), else flat rate,
        free above a threshold."""
        stores = self.pickup_stores.get(spec.code, [])
        pickup = self.rng.choice(stores) if stores and self.rng.random() < 0.15 else None
        address = {**home, "address_type": "shipping", "entity_id": home["entity_id"] - 1}
        if pickup is not None:
            address.update(
                street=[pickup["address_line"]],
                city=pickup["city"],
                postcode=pickup["postcode"],
                region=pickup["city"],
            )
            return {
                "method": "instore_pickup",
                "title": "In-Store Pickup Delivery - Pick in Store",
                "amount": 0.0,
                "address": address,
                "pickup": pickup,
            }
        if subtotal >= FREE_SHIPPING_AED * spec.aed_rate:
            return {
                "method": "freeshipping_freeshipping",
                "title": "Free Shipping - Free",
                "amount": 0.0,
                "address": address,
                "pickup": None,
            }
        return {
            "method": "flatrate_flatrate",
            "title": "Flat Rate - Fixed",
            "address": address,
            "pickup": None,
            "amount": round(FLAT_RATE_AED * spec.aed_rate, spec.decimals),
        }

    def _payment(self, method: str, entity_id: int, grand_total: float, shipping: float) -> dict[str, Any]:
        payment = {
            "account_status": None,
            "additional_information": [PAYMENT_TITLES[method]],
            "amount_ordered": grand_total,
            "base_amount_ordered": grand_total,
            "base_shipping_amount": shipping,
            "shipping_amount": shipping,
            "cc_last4": f"{self.rng.randint(0, 9999):04d}" if method == "checkout_com" else None,
            "entity_id": entity_id,
            "method": method,
            "parent_id": entity_id,
        }
        if method == "checkout_com":
            payment["last_trans_id"] = f"pay_{self.rng.getrandbits(64):016x}"
        return payment

    @staticmethod
    def _extension(
        spec: CountrySpec, order: dict[str, Any], shipping: dict[str, Any], tax: float
    ) -> dict[str, Any]:
        amount = shipping["amount"]
        extension: dict[str, Any] = {
            "shipping_assignments": [
                {
                    "shipping": {
                        "address": shipping["address"],
                        "method": shipping["method"],
                        "total": {
                            "base_shipping_amount": amount,
                            "base_shipping_incl_tax": amount,
                            "base_shipping_tax_amount": 0,
                            "shipping_amount": amount,
                            "shipping_incl_tax": amount,
                            "shipping_tax_amount": 0,
                            "shipping_discount_amount": 0,
                        },
                    },
                    "items": copy.deepcopy(order["items"]),  # Magento repeats the rows here
                    "stock_id": spec.stock_id,
                }
            ],
            "payment_additional_info": [
                {"key": "method_title", "value": PAYMENT_TITLES[order["payment"]["method"]]}
            ],
            "applied_taxes": [
                {
                    "code": f"VAT-{spec.code}",
                    "title": "VAT",
                    "percent": spec.vat_rate * 100,
                    "amount": tax,
                    "base_amount": tax,
                }
            ]
            if tax
            else [],
            "item_applied_taxes": [],
            "converting_from_quote": True,
        }
        if shipping["pickup"] is not None:
            extension["pickup_location_code"] = shipping["pickup"]["magento_source_code"]
        return extension

    def _state(self, method: str) -> str:
        r = self.rng.random()
        if method == "checkout_com":
            return (
                "processing"
                if r < 0.84
                else "pending_payment"
                if r < 0.92
                else "canceled"
                if r < 0.96
                else "holded"
            )
        if method == "cashondelivery":
            return "processing" if r < 0.9 else "canceled"
        return "new" if r < 0.5 else "processing" if r < 0.9 else "canceled"

    @staticmethod
    def _apply_state(order: dict[str, Any], state: str) -> None:
        """Invoiced and paid: card and cheque orders in processing (and held ones, held after payment).
        Cash on delivery stays uninvoiced until delivery; cancelled orders cancel every row."""
        method = order["payment"]["method"]
        total = order["grand_total"]
        if state == "holded":
            order.update(hold_before_state="processing", hold_before_status="processing")
        if state in ("processing", "holded") and method != "cashondelivery":
            for item in order["items"]:
                item["qty_invoiced"] = item["qty_ordered"]
                item["row_invoiced"] = item["row_total"]
            for prefix in ("", "base_"):
                order[f"{prefix}total_invoiced"] = total
                order[f"{prefix}total_paid"] = total
                order[f"{prefix}subtotal_invoiced"] = order["subtotal"]
                order[f"{prefix}tax_invoiced"] = order["tax_amount"]
                order[f"{prefix}shipping_invoiced"] = order["shipping_amount"]
                order[f"{prefix}discount_invoiced"] = order["discount_amount"]
            order["total_due"] = order["base_total_due"] = 0
            order["payment"]["amount_paid"] = order["payment"]["base_amount_paid"] = total
        elif state == "canceled":
            for item in order["items"]:
                item["qty_canceled"] = item["qty_ordered"]
            order["total_canceled"] = order["base_total_canceled"] = total
            order["total_due"] = order["base_total_due"] = 0
        else:
            order["base_total_due"] = total

    def _address(
        self, spec: CountrySpec, entity_id: int, firstname: str, lastname: str, email: str
    ) -> dict[str, Any]:
        rng = self.rng
        city = rng.choice(spec.cities)
        return {
            "address_type": "billing",
            "city": city.name,
            "country_id": spec.code,
            "email": email,
            "entity_id": entity_id * 2,
            "firstname": firstname,
            "lastname": lastname,
            "parent_id": entity_id,
            "postcode": city.postcode,
            "region": city.name,
            "region_code": None,
            "region_id": 0,
            "street": [
                f"{rng.choice(('Villa', 'Apartment', 'Building'))} {rng.randint(1, 1500)}",
                rng.choice(spec.streets),
            ],
            "telephone": f"{spec.phone_code}5{rng.randint(0, 99_999_999):08d}",
        }

    def _lines(
        self, order_id: int, spec: CountrySpec, discount_pct: float, created: str
    ) -> list[dict[str, Any]]:
        rng = self.rng
        rows: list[dict[str, Any]] = []
        count = rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
        for index in range(count):
            kind = rng.random()
            qty = rng.choices((1, 2, 3), weights=(75, 20, 5))[0]
            if index > 0 and kind >= 0.92:
                sku, name, product_type, price_aed, product_id = rng.choice(VIRTUAL_PRODUCTS)
                rows.append(
                    self._row(
                        order_id,
                        spec,
                        sku,
                        name,
                        product_type,
                        qty,
                        _local(price_aed, spec),
                        0.0,
                        product_id,
                        discount_pct,
                        created,
                    )
                )
            elif kind >= 0.88:
                rows.extend(self._bundle(order_id, spec, qty, discount_pct, created))
            elif kind >= 0.62:
                sku = rng.choice(self.beauty)
                rows.append(
                    self._row(
                        order_id,
                        spec,
                        sku["sku"],
                        sku["name"],
                        "simple",
                        qty,
                        _local(sku["price_aed"], spec),
                        sku["weight_g"] / 1000,
                        sku["product_id"],
                        discount_pct,
                        created,
                    )
                )
            else:
                rows.extend(
                    self._configurable(order_id, spec, rng.choice(self.fashion), qty, discount_pct, created)
                )
        return rows

    def _configurable(
        self,
        order_id: int,
        spec: CountrySpec,
        sku: dict[str, Any],
        qty: int,
        discount_pct: float,
        created: str,
    ) -> list[dict[str, Any]]:
        """Magento's pair: parent row (type configurable) carries the price; the simple child row has
        the same sku, price 0 and ``parent_item_id``; stock moves on the child."""
        parent_product = self.parents.get(sku["parent_sku"], {"product_id": 100_000})
        parent = self._row(
            order_id,
            spec,
            sku["sku"],
            sku["style_name"],
            "configurable",
            qty,
            _local(sku["price_aed"], spec),
            sku["weight_g"] / 1000,
            parent_product["product_id"],
            discount_pct,
            created,
        )
        colour, size, _ = sku["_option_ids"]
        parent["product_option"] = {
            "extension_attributes": {
                "configurable_item_options": [
                    {"option_id": "93", "option_value": colour},
                    {"option_id": "144", "option_value": size},
                ]
            }
        }
        child = self._row(
            order_id,
            spec,
            sku["sku"],
            sku["name"],
            "simple",
            qty,
            0.0,
            sku["weight_g"] / 1000,
            sku["product_id"],
            0.0,
            created,
            parent=parent,
        )
        return [parent, child]

    def _bundle(
        self, order_id: int, spec: CountrySpec, qty: int, discount_pct: float, created: str
    ) -> list[dict[str, Any]]:
        """A dynamic-price gift set: the parent's sku joins the components', each child has its own price."""
        components = self.rng.sample(self.beauty, k=min(len(self.beauty), self.rng.choice((2, 3))))
        d = spec.decimals
        parent_price = round(sum(_local(c["price_aed"], spec) for c in components), d)
        parent = self._row(
            order_id,
            spec,
            "GIFTSET-" + "-".join(c["sku"] for c in components),
            "Beauty Gift Set",
            "bundle",
            qty,
            parent_price,
            sum(c["weight_g"] for c in components) / 1000,
            200_001,
            discount_pct,
            created,
        )
        children = [
            self._row(
                order_id,
                spec,
                c["sku"],
                c["name"],
                "simple",
                qty,
                _local(c["price_aed"], spec),
                c["weight_g"] / 1000,
                c["product_id"],
                discount_pct,
                created,
                parent=parent,
            )
            for c in components
        ]
        # The parent's tax and discount are the sum of its children's, so either side adds up.
        parent["tax_amount"] = parent["base_tax_amount"] = round(sum(c["tax_amount"] for c in children), d)
        parent["discount_amount"] = parent["base_discount_amount"] = round(
            sum(c["discount_amount"] for c in children), d
        )
        return [parent, *children]

    def _row(
        self,
        order_id: int,
        spec: CountrySpec,
        sku: str,
        name: str,
        product_type: str,
        qty: int,
        price: float,
        weight_kg: float,
        product_id: int,
        discount_pct: float,
        created: str,
        parent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One ``items[]`` row; ``price`` is already in the order currency."""
        d = spec.decimals
        row_total = round(price * qty, d)
        discount = round(row_total * discount_pct, d)
        tax = round((row_total - discount) * spec.vat_rate, d)
        row: dict[str, Any] = {
            "amount_refunded": 0,
            "base_amount_refunded": 0,
            "base_discount_amount": discount,
            "base_original_price": price,
            "base_price": price,
            "base_price_incl_tax": round(price * (1 + spec.vat_rate), d),
            "base_row_total": row_total,
            "base_row_total_incl_tax": round(row_total + tax, d),
            "base_tax_amount": tax,
            "created_at": created,
            "discount_amount": discount,
            "discount_percent": discount_pct * 100,
            "free_shipping": 0,
            "is_qty_decimal": 0,
            "is_virtual": 1 if product_type in ("virtual", "downloadable") else 0,
            "item_id": next(self.item_ids),
            "name": name,
            "no_discount": 0,
            "order_id": order_id,
            "original_price": price,
            "price": price,
            "price_incl_tax": round(price * (1 + spec.vat_rate), d),
            "product_id": product_id,
            "product_type": product_type,
            "qty_canceled": 0,
            "qty_invoiced": 0,
            "qty_ordered": qty,
            "qty_refunded": 0,
            "qty_shipped": 0,
            "row_total": row_total,
            "row_total_incl_tax": round(row_total + tax, d),
            "row_weight": round(weight_kg * qty, 3),
            "sku": sku,
            "store_id": spec.magento_store_id,
            "tax_amount": tax,
            "tax_percent": spec.vat_rate * 100,
            "updated_at": created,
            "weight": weight_kg,
        }
        if parent is not None:
            row["parent_item_id"] = parent["item_id"]
        if product_type == "downloadable":
            row["product_option"] = {
                "extension_attributes": {"downloadable_option": {"downloadable_links": [1]}}
            }
        return row


def _local(price_aed: float, spec: CountrySpec) -> float:
    return round(price_aed * spec.aed_rate, spec.decimals)


def _link_parents(items: list[dict[str, Any]]) -> None:
    """Children carry a full copy of their parent row, as Magento returns them; done last so the
    copy shows the parent's final quantities."""
    by_id = {item["item_id"]: item for item in items}
    for item in items:
        parent = by_id.get(item.get("parent_item_id"))
        if parent is not None:
            item["parent_item"] = {k: v for k, v in parent.items() if k != "parent_item"}


def build_orders(
    count: int,
    locations: list[dict[str, Any]],
    skus: list[dict[str, Any]],
    parents: list[dict[str, Any]],
    countries: Sequence[str],
    seed: int,
    as_of: datetime,
) -> list[dict[str, Any]]:
    if count <= 0 or not skus:
        return []
    rng = random.Random(f"{seed}:orders")
    specs = _country_specs(countries)
    factory = _OrderFactory(rng, skus, parents, locations, _as_of(as_of))
    weights = [s.order_weight for s in specs]
    return [
        factory.build(entity_id, rng.choices(specs, weights=weights)[0]) for entity_id in range(1, count + 1)
    ]


# --- the data set -----------------------------------------------------------------------------------


@dataclass
class DemoData:
    seed: int
    as_of: datetime
    countries: list[dict[str, Any]]
    locations: list[dict[str, Any]]
    skus: list[dict[str, Any]]
    configurable_parents: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    stock_rows: list[dict[str, Any]] = field(default_factory=list)

    def iter_stock_rows(self) -> Iterator[dict[str, Any]]:
        return _stock_rows(self.locations, [s["sku"] for s in self.skus], self.seed, _iso_z(self.as_of))

    def bad_stock_rows(self, n: int) -> list[dict[str, Any]]:
        """Invalid ERP rows for quarantine tests, cycling through ``BAD_ROW_KINDS`` (row i has kind
        ``BAD_ROW_KINDS[i % 5]``); everything else about each row is valid."""
        rows = []
        stamp = _iso_z(self.as_of)
        for i in range(n):
            kind = BAD_ROW_KINDS[i % len(BAD_ROW_KINDS)]
            row: dict[str, Any] = {
                "itemNumber": self.skus[i % len(self.skus)]["sku"],
                "locationCode": self.locations[i % len(self.locations)]["store_id"],
                "variantCode": "",
                "inventory": 1 + i % 9,
                "unitOfMeasureCode": "PCS",
                "lastModifiedDateTime": stamp,
            }
            if kind == "negative_inventory":
                row["inventory"] = -(1 + i % 7)
            elif kind == "non_numeric_inventory":
                row["inventory"] = "abc"
            elif kind == "missing_location":
                del row["locationCode"]
            elif kind == "unknown_location":
                row["locationCode"] = "XX-ST-99"
            else:
                row["itemNumber"] = f"UNKNOWN-SKU-{i:04d}"
            rows.append(row)
        return rows

    def magento_sources(self) -> list[dict[str, Any]]:
        """MSI sources (``POST /_sandbox/sources`` or ``/V1/inventory/sources``): one per location."""
        return [
            {
                "source_code": loc["magento_source_code"],
                "name": loc["name"],
                "enabled": loc["active"],
                "country_id": loc["country_code"],
                "city": loc["city"],
                "postcode": loc["postcode"],
                "street": loc["address_line"],
                "latitude": loc["latitude"],
                "longitude": loc["longitude"],
                "phone": loc["phone"],
                "email": loc["email"],
                "description": loc["location_type"],
                "use_default_carrier_config": True,
                "extension_attributes": {
                    "is_pickup_location_active": loc["pickup_enabled"],
                    "frontend_name": loc["name"],
                },
            }
            for loc in self.locations
        ]

    def magento_stocks(self) -> list[dict[str, Any]]:
        """One stock per country/website, linking every location of that country."""
        return [
            {
                "stock_id": c["stock_id"],
                "name": f"{c['name']} Stock",
                "website_code": c["website_code"],
                "source_codes": [
                    loc["magento_source_code"]
                    for loc in self.locations
                    if loc["country_code"] == c["country_code"]
                ],
                "store_ids": [c["magento_store_id"]],
            }
            for c in self.countries
        ]

    def erp_items(self) -> list[dict[str, Any]]:
        """Business Central ``items`` for the catalogue (``POST /_sandbox/items`` on the ERP sandbox)."""
        stamp = self.as_of.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return [
            {
                "number": s["sku"],
                "displayName": s["name"],
                "type": "Inventory",
                "itemCategoryCode": s["category"].upper(),
                "unitPrice": s["price_aed"],
                "unitCost": round(s["price_aed"] * 0.4, 2),
                "baseUnitOfMeasureCode": "PCS",
                "lastModifiedDateTime": stamp,
            }
            for s in self.skus
        ]


def generate(
    skus: int = 200,
    stores_per_country: int = 4,
    orders: int = 50,
    seed: int = 7,
    *,
    as_of: datetime = DEFAULT_AS_OF,
    countries: Sequence[str] = DEFAULT_COUNTRIES,
    with_stock_rows: bool = True,
) -> DemoData:
    """Build the whole data set. ``as_of`` (naive = UTC) stamps stock rows and bounds order dates
    (the 14 days before it). ``with_stock_rows=False`` skips materialising stock; use
    ``iter_stock_rows`` for large catalogues."""
    as_of = _as_of(as_of)
    specs = _country_specs(countries)
    locations = build_locations(countries, stores_per_country, seed)
    catalogue = list(iter_skus(skus))
    parents = _configurable_parents(catalogue)
    data = DemoData(
        seed=seed,
        as_of=as_of,
        countries=[
            {
                "country_code": s.code,
                "name": s.name,
                "currency": s.currency,
                "website_code": s.website_code,
                "stock_id": s.stock_id,
                "magento_store_id": s.magento_store_id,
                "phone_code": s.phone_code,
                "vat_rate": s.vat_rate,
                "currency_decimals": s.decimals,
            }
            for s in specs
        ],
        locations=locations,
        skus=[{k: v for k, v in s.items() if not k.startswith("_")} for s in catalogue],
        configurable_parents=parents,
        orders=build_orders(orders, locations, catalogue, parents, countries, seed, as_of),
    )
    if with_stock_rows:
        data.stock_rows = list(data.iter_stock_rows())
    return data
