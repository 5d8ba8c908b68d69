-- Each Magento order's current version, the one reading of raw.magento_order every consumer shares
-- (docs/adr/0011-one-reading-of-the-magento-order.md): per entity_id, the latest landed version by
-- updated_at, then record_key, among the versions with both keys and no open 'magento_order'
-- quarantine entry. A malformed newer version is thus skipped and the previous good one stands.
-- Read by dbt (base_magento__orders_current materialises it), the order gate's exception checks
-- (before dbt runs) and the shipping planner. A filter on entity_id reaches the UNIQUE
-- (entity_id, updated_at) index, so reading a few orders costs a few index look-ups.
CREATE OR REPLACE VIEW raw.magento_order_current AS
SELECT DISTINCT ON (m.entity_id)
       m.record_key, m.entity_id, m.updated_at, m.increment_id, m.store_id, m.channel_code, m.payload,
       m.batch_id, m.data_interval_start, m.data_interval_end, m.loaded_at
FROM raw.magento_order m
WHERE m.entity_id IS NOT NULL
  AND m.updated_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM raw.quarantine q
                  WHERE q.source = 'magento_order' AND q.record_key = m.record_key AND q.resolved_at IS NULL)
ORDER BY m.entity_id, m.updated_at DESC, m.record_key DESC;
