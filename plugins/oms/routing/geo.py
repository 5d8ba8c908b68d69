"""Distances and courier lane prices: the numbers behind the distance, cost and service sorts."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

from oms.routing.model import RateCard

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (the same formula as the pickup-location search in SQL)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class Point(NamedTuple):
    """Where a shipment goes: the customer, or the pickup store for a transfer."""

    latitude: float | None
    longitude: float | None
    city: str | None

    def distance_to(self, latitude: float | None, longitude: float | None, city: str | None) -> float | None:
        """Great-circle km; without coordinates, 0 in the same city, else unknown (None)."""
        if self.latitude is not None and self.longitude is not None and latitude is not None and longitude is not None:
            return haversine_km(self.latitude, self.longitude, latitude, longitude)
        if self.city and city and self.city.casefold() == city.casefold():
            return 0.0
        return None


class Quote(NamedTuple):
    courier: str
    cost: float
    transit_days: float
    rate_specificity: int


class _Lanes(NamedTuple):
    rows: list[tuple[RateCard, int]]   # rows that may start here, with their origin specificity
    km_edges: list[float]              # every band edge: a quote only changes across one
    weight_edges: list[float]


class RateBook:
    """Rate cards, looked up per (location, destination, weight).

    Per courier the most specific matching row wins (from store > from type > from anywhere, then
    to city > distance band > anywhere; then the lower cost); across couriers the cheapest (cost
    sort) or the fastest (service sort), ties on the other number, then the courier name.
    Answers are cached per (location, city, distance band, weight band): a quote can only change
    where some row's band starts or ends.
    """

    def __init__(self, cards: Iterable[RateCard]):
        self._by_country: dict[str, list[RateCard]] = defaultdict(list)
        self._lanes: dict[tuple[str, str, str], _Lanes] = {}
        self._cache: dict[tuple, tuple[Quote | None, Quote | None]] = {}
        for card in cards:
            self._by_country[card.country_code].append(card)

    def __bool__(self) -> bool:
        return bool(self._by_country)

    def lanes(self, country: str, store_id: str, location_type: str) -> _Lanes:
        k = (country, store_id, location_type)
        lanes = self._lanes.get(k)
        if lanes is None:
            rows = [(c, 8 if c.from_store_id else 4 if c.from_location_type else 0)
                    for c in self._by_country.get(country, ())
                    if (c.from_store_id is None or c.from_store_id == store_id)
                    and (c.from_location_type is None or c.from_location_type == location_type)]
            km = sorted({e for c, _ in rows for e in (c.min_km, c.max_km) if e is not None})
            weight = sorted({e for c, _ in rows for e in (c.min_weight_g, c.max_weight_g) if e is not None})
            lanes = self._lanes[k] = _Lanes(rows, km, weight)
        return lanes

    def quotes(self, country: str, store_id: str, location_type: str, to_city: str | None,
               distance_km: float | None, weight_g: float) -> list[Quote]:
        """The best matching lane of each courier, by courier name."""
        best: dict[str, Quote] = {}
        city = to_city.casefold() if to_city else None
        for c, origin_specificity in self.lanes(country, store_id, location_type).rows:
            if c.to_city is not None and (city is None or c.to_city.casefold() != city):
                continue
            banded = c.min_km is not None or c.max_km is not None
            if banded:
                if distance_km is None:
                    continue
                if c.min_km is not None and distance_km < c.min_km:
                    continue
                if c.max_km is not None and distance_km >= c.max_km:
                    continue
            if weight_g < c.min_weight_g or (c.max_weight_g is not None and weight_g >= c.max_weight_g):
                continue
            specificity = origin_specificity + (2 if c.to_city else 1 if banded else 0)
            held = best.get(c.courier)
            if held is None or (specificity, -c.cost) > (held.rate_specificity, -held.cost):
                best[c.courier] = Quote(c.courier, float(c.cost), float(c.transit_days), specificity)
        return sorted(best.values(), key=lambda q: q.courier)

    def best(self, country: str, store_id: str, location_type: str, to_city: str | None,
             distance_km: float | None, weight_g: float) -> tuple[Quote | None, Quote | None]:
        """(cheapest, fastest) lane from the location to the destination for this weight."""
        lanes = self.lanes(country, store_id, location_type)
        if not lanes.rows:
            return None, None
        k = (country, store_id, location_type, to_city.casefold() if to_city else None,
             None if distance_km is None else bisect.bisect_right(lanes.km_edges, distance_km),
             bisect.bisect_right(lanes.weight_edges, weight_g))
        hit = self._cache.get(k)
        if hit is None:
            quotes = self.quotes(country, store_id, location_type, to_city, distance_km, weight_g)
            hit = self._cache[k] = (self.cheapest(quotes), self.fastest(quotes))
        return hit

    @staticmethod
    def cheapest(quotes: list[Quote]) -> Quote | None:
        return min(quotes, key=lambda q: (q.cost, q.transit_days, q.courier), default=None)

    @staticmethod
    def fastest(quotes: list[Quote]) -> Quote | None:
        return min(quotes, key=lambda q: (q.transit_days, q.cost, q.courier), default=None)
