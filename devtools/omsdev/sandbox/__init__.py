"""Contract-faithful sandboxes of Magento, Clickpost and the ERP, with fault switches.

Each sandbox is a FastAPI app built by ``create_app`` in its own module (``magento``, ``clickpost``,
``erp``); ``server.run_all`` serves the three in one process. Every app shares the same harness:
``faults`` (runtime switches for errors, 429s, timeouts, latency, duplicates, shuffling) and
``request_log`` (what the platform sent, read back under ``/_sandbox/requests``).
"""
