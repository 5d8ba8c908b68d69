"""Omnichannel order-management data platform: the logic shared by DAGs, the API, the CLI and tests."""
