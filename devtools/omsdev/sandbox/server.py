"""Serve the three sandboxes from one process: three ``uvicorn.Server`` instances on one asyncio loop.

    python -m omsdev.sandbox.server --magento-port 8101 --clickpost-port 8102 --erp-port 8103 [--demo]

Credentials come from keyword arguments, else from the environment, else from sandbox defaults:
``OMS_MAGENTO_TOKEN``, ``OMS_CLICKPOST_USERNAME``, ``OMS_CLICKPOST_KEY``,
``OMS_CLICKPOST_WEBHOOK_URL``, ``OMS_CLICKPOST_WEBHOOK_KEY``, ``OMS_ERP_USERNAME``,
``OMS_ERP_PASSWORD``. ``--demo`` seeds Magento (sources, stocks, orders) and the ERP (items,
stock rows) from ``omsdev.demo_data`` so the platform has something to pull.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI

from . import clickpost, erp, magento, sms

ENV_DEFAULTS = {
    "magento_token": ("OMS_MAGENTO_TOKEN", "magento-sandbox-token"),
    "clickpost_username": ("OMS_CLICKPOST_USERNAME", "oms"),
    "clickpost_key": ("OMS_CLICKPOST_KEY", "clickpost-sandbox-key"),
    "clickpost_webhook_url": ("OMS_CLICKPOST_WEBHOOK_URL", None),
    "clickpost_webhook_key": ("OMS_CLICKPOST_WEBHOOK_KEY", None),
    "erp_username": ("OMS_ERP_USERNAME", "oms"),
    "erp_password": ("OMS_ERP_PASSWORD", "erp-sandbox-key"),
    "erp_company_id": ("OMS_ERP_COMPANY_ID", erp.DEFAULT_COMPANY_ID),
    "sms_key": ("OMS_SMS_KEY", "sms-sandbox-key"),
}


@dataclass(frozen=True)
class SandboxCredentials:
    magento_token: str
    clickpost_username: str
    clickpost_key: str
    clickpost_webhook_url: str | None
    clickpost_webhook_key: str | None
    erp_username: str
    erp_password: str
    erp_company_id: str
    sms_key: str = "sms-sandbox-key"


def resolve_credentials(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> SandboxCredentials:
    overrides = overrides or {}
    unknown = set(overrides) - set(ENV_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown sandbox credential(s): {sorted(unknown)}")
    environ = os.environ if environ is None else environ
    values = {
        name: overrides[name] if overrides.get(name) is not None else environ.get(var) or default
        for name, (var, default) in ENV_DEFAULTS.items()
    }
    return SandboxCredentials(**values)


def build_apps(credentials: SandboxCredentials) -> tuple[FastAPI, FastAPI, FastAPI]:
    return (
        magento.create_app(credentials.magento_token),
        clickpost.create_app(
            credentials.clickpost_username,
            credentials.clickpost_key,
            credentials.clickpost_webhook_url,
            credentials.clickpost_webhook_key,
        ),
        erp.create_app(credentials.erp_username, credentials.erp_password, company_id=credentials.erp_company_id),
    )


def seed_demo(magento_app: FastAPI, erp_app: FastAPI, **generate_args: Any) -> dict[str, int]:
    """Load a generated demo data set straight into the sandboxes' state (no HTTP round trips)."""
    from omsdev import demo_data  # imported here: the servers alone do not need the generator

    data = demo_data.generate(**generate_args)
    magento_state = magento_app.state.sandbox
    magento_state.inventory.register_sources(data.magento_sources())
    magento_state.inventory.register_stocks(data.magento_stocks())
    magento_state.sales.load_orders(data.orders)
    erp_state = erp_app.state.sandbox.state
    erp_state.put_items(data.erp_items())
    erp_state.put_stock(data.stock_rows, mode="replace")
    return {
        "locations": len(data.locations),
        "skus": len(data.skus),
        "orders": len(data.orders),
        "stock_rows": len(data.stock_rows),
    }


class _Server(uvicorn.Server):
    """uvicorn installs its own signal handlers per server; with three servers on one loop the last
    one would win, so ``serve_all`` owns the signals instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_all(apps: Mapping[int, FastAPI], host: str = "127.0.0.1", log_level: str = "warning") -> None:
    """Serve ``{port: app}`` until SIGINT/SIGTERM (or until one server stops, e.g. its port is taken)."""
    servers = [
        _Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off"))
        for port, app in apps.items()
    ]
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not main thread / not supported
            loop.add_signal_handler(sig, stop)
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()  # re-raise a startup failure (uvicorn exits when a port is in use)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def run_all(
    magento_port: int,
    clickpost_port: int,
    erp_port: int,
    host: str = "127.0.0.1",
    *,
    sms_port: int | None = None,
    demo: dict[str, Any] | None = None,
    **creds: Any,
) -> None:
    """Blocking entry used by the ``oms`` CLI. ``creds`` keys are those of ``SandboxCredentials``;
    ``demo`` (arguments for ``omsdev.demo_data.generate``) seeds the sandboxes first when given."""
    magento_app, clickpost_app, erp_app = build_apps(resolve_credentials(creds))
    if demo is not None:
        seed_demo(magento_app, erp_app, **demo)
    apps = {magento_port: magento_app, clickpost_port: clickpost_app, erp_port: erp_app}
    if sms_port:
        apps[sms_port] = sms.create_app(resolve_credentials(creds).sms_key)
    asyncio.run(serve_all(apps, host=host))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m omsdev.sandbox.server", description="Serve the Magento, Clickpost and ERP sandboxes."
    )
    parser.add_argument("--magento-port", type=int, default=8101)
    parser.add_argument("--clickpost-port", type=int, default=8102)
    parser.add_argument("--erp-port", type=int, default=8103)
    parser.add_argument("--sms-port", type=int, default=None, help="also serve the SMS provider sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--demo", action="store_true", help="seed Magento and the ERP with demo data")
    parser.add_argument("--demo-skus", type=int, default=200)
    parser.add_argument("--demo-stores-per-country", type=int, default=4)
    parser.add_argument("--demo-orders", type=int, default=50)
    parser.add_argument("--demo-seed", type=int, default=7)
    args = parser.parse_args(argv)
    demo = (
        {
            "skus": args.demo_skus,
            "stores_per_country": args.demo_stores_per_country,
            "orders": args.demo_orders,
            "seed": args.demo_seed,
        }
        if args.demo
        else None
    )
    print(
        f"sandboxes on {args.host}: magento :{args.magento_port}, clickpost :{args.clickpost_port}, "
        f"erp :{args.erp_port}" + (" (demo data loaded)" if demo else ""),
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        run_all(args.magento_port, args.clickpost_port, args.erp_port, args.host, demo=demo, sms_port=args.sms_port)


if __name__ == "__main__":
    main()
