"""What Magento should hold per (sku, MSI source), from the ATP marts and each channel's contract.

- 'physical' channels: quantity = the source's free units + the units Magento still reserves
  against it. Free units = the store's ATP (on hand − held − lines shipped or collected but not
  yet posted by the ERP + returns restocked not yet in the ERP − safety stock, at least 0): safety
  stock and the floor at 0 apply to these only. Magento's own reservations hold open orders
  (subtracting ours as well would count every open order twice — MSI's classic bug), and Magento
  deducts each order's units from the source it ships from, so the source also carries: the
  units held for orders at it that Magento has not shipped yet (held − lines Magento already
  shows shipped whose parcel has not left — we create the Magento shipment at the manifest, the
  `shipment` posting comes with the courier's pickup scan — − click & collect orders "ready for
  pickup" whose Magento shipment was sent), units in transit from it to a pickup store (Magento
  still reserves their order until it ships them at the pickup) and units collected at it whose
  "ready for pickup" shipment the outbox has not sent yet. A shelf below safety stock + held
  units still publishes the held units: without them Magento would refuse their shipment (MSI's
  source deduction) and show less salable than the platform. Units held for the platform's own
  orders — an exchange's replacement — are not added back: Magento has no reservation of them
  to offset (added, Magento showed them salable until they left the shelf).
- 'sellable' channels: quantity = ATP (open orders already subtracted: store holds per source, and
  the country-level holds not yet routed taken with the buffer, below); Magento's reservations
  must be switched off for the channel's stock.
- Locations that are not eligible for the channel (stores without ship-from-store) publish as
  quantity only the units held there for orders (click & collect orders collected there; not
  those Magento shipped already at "ready for pickup"), plus
  those collected already whose Magento shipment the outbox has still to send, so
  Magento's salable quantity is the channel's ATP: Magento ships such an order from the pickup
  store's source at "ready for pickup", and its source deduction refuses a shipment the source's
  quantity does not cover (the order's Magento reservation would then stay for good). Status 1
  under 'physical' — the held units offset Magento's own reservation of the same order, which
  the channel's ATP does not count (the units are not at an eligible location) — and 0 under
  'sellable' (no reservation to offset). Pickup availability at such stores is answered by the
  platform's own /v1/pickup-locations, which checks real quantities.
- The channel buffer (held back per SKU) — plus, for sellable channels, the reservations not yet
  allocated to a location — is taken from the free units of the sources with the most free
  units first (never from units Magento reserves), so Σ published = channel ATP exactly.
Never negative; status 0 when nothing is sellable.
"""

# Live values (the ledger's functions: last dbt snapshot + ERP movements and reservations since),
# so a movement posted through the ERP API is published without waiting for the next dbt build.
EXPECTED_SQL = """
WITH skus AS (SELECT coalesce(array_agg(DISTINCT sku), '{}') AS all_skus FROM marts.fct_atp_store),
shipped_not_left AS (
    SELECT s.store_id, i ->> 'sku' AS sku,
           sum(greatest((i ->> 'qty')::numeric - coalesce(p.qty, 0), 0)) AS qty
    FROM oms.shipment s
    CROSS JOIN LATERAL jsonb_array_elements(s.line_items) AS i
    LEFT JOIN oms.sales_posting p
           ON p.posting_type = 'shipment' AND p.source_ref = s.reference_number
          AND p.order_increment_id = s.order_increment_id
          AND p.line_key = s.magento_entity_id || '-' || (i ->> 'order_item_id')
    WHERE s.state = 'magento_shipped'
    GROUP BY 1, 2
),
collected_unshipped AS (   -- collected at a pickup store, Magento's shipment of it not sent yet
    SELECT t.store_id, l ->> 'sku' AS sku, sum((l ->> 'qty')::numeric) AS qty
    FROM oms.magento_outbox o
    JOIN oms.fulfilment_task t ON o.dedupe_key = 'ship:pickup:' || t.task_id
    CROSS JOIN LATERAL jsonb_array_elements(t.lines) AS l
    WHERE o.kind = 'ship' AND o.status = 'pending' AND t.status = 'picked_up'
    GROUP BY 1, 2
),
ready_shipped AS (   -- ready for pickup, Magento's shipment of it sent: Magento deducted the units
    SELECT t.store_id, l ->> 'sku' AS sku, sum((l ->> 'qty')::numeric) AS qty   -- from the source already
    FROM oms.magento_outbox o
    JOIN oms.fulfilment_task t ON o.dedupe_key = 'ship:pickup:' || t.task_id
    CROSS JOIN LATERAL jsonb_array_elements(t.lines) AS l
    WHERE o.kind = 'ship' AND o.status = 'done' AND t.status = 'ready_for_pickup'
    GROUP BY 1, 2
),
-- orders Magento never had — an exchange's replacement is the platform's own order: Magento
-- reserves nothing for it, so its units are not added back to the source for Magento's
-- reservation to offset (they were, and Magento showed them salable)
platform_orders AS (
    SELECT exchange_increment_id AS order_increment_id FROM oms.return_exchange
),
platform_held AS (
    SELECT r.store_id, r.sku, sum(r.qty) AS qty
    FROM oms.reservation r
    JOIN platform_orders p USING (order_increment_id)
    WHERE r.status = 'active' AND r.store_id IS NOT NULL
    GROUP BY 1, 2
),
in_transit AS (   -- for Magento's orders only
    SELECT t.from_store_id AS store_id, t.sku, sum(t.qty) AS qty
    FROM oms.stock_in_transit t
    WHERE NOT EXISTS (SELECT 1 FROM platform_orders p WHERE p.order_increment_id = t.order_increment_id)
    GROUP BY 1, 2
),
base AS (
    SELECT s.country_code,
           s.sku,
           s.magento_source_code AS source_code,
           c.buffer_qty + CASE WHEN c.publish_mode = 'sellable' THEN coalesce(a.unallocated_reserved_qty, 0)
                               ELSE 0 END AS holdback,
           s.is_channel_eligible AS eligible, c.publish_mode,
           CASE WHEN NOT s.is_channel_eligible   -- held for orders collected there, on the shelf, and
                    -- collected already while Magento's shipment of them is still to be sent
                    THEN least(greatest(s.reserved_qty - coalesce(x.qty, 0) - coalesce(r.qty, 0), 0),
                               greatest(s.on_hand_qty - s.awaiting_erp_qty + s.restocked_qty - coalesce(r.qty, 0), 0))
                         + coalesce(u.qty, 0)
                WHEN c.publish_mode = 'sellable' THEN s.atp_qty
                -- the free units (the store's ATP: safety stock and the floor at 0 apply to these
                -- only) plus the units Magento still reserves against this source: held for
                -- orders here and not shipped in Magento yet (parcels and "ready" click & collect
                -- orders Magento shipped hold units it deducted already), in transit to a pickup
                -- store, collected with the "ready" shipment unsent
                ELSE s.atp_qty + greatest(s.reserved_qty - coalesce(x.qty, 0) - coalesce(f.qty, 0) - coalesce(r.qty, 0), 0)
                     + coalesce(t.qty, 0) + coalesce(u.qty, 0)
           END AS qty,
           CASE WHEN s.is_channel_eligible THEN s.atp_qty ELSE 0 END AS free
    FROM oms.atp_store_live((SELECT all_skus FROM skus)) s
    JOIN ref.channel c ON c.country_code = s.country_code AND c.active
    LEFT JOIN shipped_not_left f ON f.store_id = s.store_id AND f.sku = s.sku
    LEFT JOIN platform_held x ON x.store_id = s.store_id AND x.sku = s.sku
    LEFT JOIN in_transit t ON t.store_id = s.store_id AND t.sku = s.sku
    LEFT JOIN collected_unshipped u ON u.store_id = s.store_id AND u.sku = s.sku
    LEFT JOIN ready_shipped r ON r.store_id = s.store_id AND r.sku = s.sku
    LEFT JOIN oms.atp_country_live((SELECT all_skus FROM skus)) a ON a.country_code = s.country_code AND a.sku = s.sku
),
ordered AS (
    SELECT *,
           coalesce(sum(free) FILTER (WHERE eligible)
                        OVER (PARTITION BY country_code, sku ORDER BY eligible DESC, free DESC, source_code
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
    FROM base
),
cut AS (SELECT *, least(free, greatest(holdback - before, 0)) AS held_back FROM ordered)
SELECT sku, source_code,
       (qty - held_back)::numeric(18, 4) AS quantity,
       CASE WHEN eligible THEN (qty - held_back > 0)::int
            ELSE (publish_mode = 'physical' AND qty > 0)::int END AS status
FROM cut
"""
