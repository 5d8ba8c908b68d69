"""The inventory ledger: ERP movements, reservations, the sales-posting outbox.

The state and the race-sensitive logic live in Postgres (sql/004_inventory_ledger.sql); these
modules validate input, call those functions and turn their answers into Python values, so the
API (async) and Airflow tasks (sync) share one implementation. The rule that ties the pieces
together is in docs/inventory-ledger.md.
"""
