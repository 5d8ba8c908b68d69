"""Great Expectations gates on landed batches: failing records go to raw.quarantine with a reason."""
