"""Fulfilment after routing: routing the releasable orders, store pick
tasks, click & collect hand-overs.

- `orders`  routable orders read from the order marts as the engine's `Order`
- `holds`   the reservation side of a routing decision (the `reserve` callback of route_order)
- `tasks`   pick / hand-over / transfer tasks per shipment, their transitions, the rejection path
- `allocations_for_order(conn, increment_id)`  what each location currently fulfils (for shipping)
"""

from oms.fulfilment.tasks import allocations_for_order

__all__ = ["allocations_for_order"]
