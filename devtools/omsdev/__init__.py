"""Development tooling: vendor sandboxes, demo data and demo, the local stack. Never imported by `oms`."""
