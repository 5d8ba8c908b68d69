"""Distances and courier lane prices: the numbers behind the distance, cost and service sorts."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from oms.routing.model import RateCard

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (the same formula as the pickup-location search in SQL)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class Point:
    """Where a shipment goes: the customer, or the pickup store for a transfer."""

    latitude: float | None
    longitude: float | None
    city: str | None

    def distance_to(self, latitude: float | None, longitude: float | None, city: str | None) -> tuple[float | None, str]:
        if None not in (self.latitude, self.longitude, latitude, longitude):
            return haversine_km(self.latitude, self.longitude, latitude, longitude), "great-circle"
        if self.city and city and self.city.casefold() == city.casefold():
            return 0.0, f"same city ({city}), no coordinates"
        return None, "unknown: no coordinates"


@dataclass(frozen=True, slots=True)
class Quote:
    courier: str
    cost: float
    transit_days: float
    rate_specificity: int


class RateBook:
    """Rate cards of one country, looked up per (location, destination, weight).

    Per courier the most specific matching row wins (from store > from type > from anywhere, then
    to city > distance band > anywhere); across couriers the cheapest (cost sort) or the fastest
    (service sort) is taken, ties on the other number, then the courier name.
    """

    def __init__(self, cards: Iterable[RateCard]):
        self._by_country: dict[str, list[RateCard]] = defaultdict(list)
        for card in cards:
            self._by_country[card.country_code].append(card)
        for rows in self._by_country.values():
            rows.sort(key=lambda c: (c.courier, c.from_store_id or "", c.from_location_type or "", c.to_city or "",
                                     c.min_km or 0, c.min_weight_g, c.cost))

    def __bool__(self) -> bool:
        return bool(self._by_country)

    def quotes(self, country: str, store_id: str, location_type: str, to_city: str | None,
               distance_km: float | None, weight_g: float) -> list[Quote]:
        best: dict[str, Quote] = {}
        city = to_city.casefold() if to_city else None
        for c in self._by_country.get(country, ()):
            if c.from_store_id is not None and c.from_store_id != store_id:
                continue
            if c.from_location_type is not None and c.from_location_type != location_type:
                continue
            if c.to_city is not None and (city is None or c.to_city.casefold() != city):
                continue
            if c.min_km is not None or c.max_km is not None:
                if distance_km is None:
                    continue
                if c.min_km is not None and distance_km < c.min_km:
                    continue
                if c.max_km is not None and distance_km >= c.max_km:
                    continue
            if weight_g < c.min_weight_g or (c.max_weight_g is not None and weight_g >= c.max_weight_g):
                continue
            specificity = (8 if c.from_store_id else 4 if c.from_location_type else 0) + \
                (2 if c.to_city else 1 if (c.min_km is not None or c.max_km is not None) else 0)
            quote = Quote(c.courier, float(c.cost), float(c.transit_days), specificity)
            held = best.get(c.courier)
            if held is None or (specificity, -quote.cost) > (held.rate_specificity, -held.cost):
                best[c.courier] = quote
        return sorted(best.values(), key=lambda q: q.courier)

    @staticmethod
    def cheapest(quotes: list[Quote]) -> Quote | None:
        return min(quotes, key=lambda q: (q.cost, q.transit_days, q.courier), default=None)

    @staticmethod
    def fastest(quotes: list[Quote]) -> Quote | None:
        return min(quotes, key=lambda q: (q.transit_days, q.cost, q.courier), default=None)
