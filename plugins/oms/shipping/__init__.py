"""Shipments: Clickpost orders with AWB and labels, Magento shipments, tracking.

docs/shipping.md describes the shipment rows (oms.shipment), the exactly-once rules and the DAGs.
"""
