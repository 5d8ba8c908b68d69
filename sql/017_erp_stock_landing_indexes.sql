-- raw.erp_stock's indexes, each paid for by every landed row (docs/benchmarks.md: index upkeep was
-- most of what landing cost beyond a raw COPY of the same rows).
--
-- The ERP gate reads a window as `batch_id = … OR modified_at within the window`. A BRIN index
-- on both columns serves both arms (rows land window by window, so both follow the heap's order)
-- at a fraction of a B-tree's upkeep; the B-tree on batch_id alone served no reader (the gate's
-- OR needed both arms indexed, so it scanned the whole table). autosummarize: ranges filled since
-- the last vacuum are summarised without waiting for one (unsummarised ranges are always read).
CREATE INDEX IF NOT EXISTS erp_stock_window_brin ON raw.erp_stock USING brin (modified_at, batch_id)
    WITH (autosummarize = on);
DROP INDEX IF EXISTS raw.erp_stock_batch_idx;
