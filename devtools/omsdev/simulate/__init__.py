"""A simulated month of trading driven through the real platform, measured against ground truth
(oversell, undersell, drift, lag): `make simulate`, `oms simulate`, docs/promise-accuracy.md."""
