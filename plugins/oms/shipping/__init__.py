"""Shipments (issue 5 items 5-7): Clickpost orders with AWB and labels, Magento shipments, tracking.

docs/shipping.md describes the ledger, the exactly-once rules and the DAGs.
"""
