"""Publishing stock to Magento MSI: expected values, deltas against a ledger, chunked or bulk sends."""
