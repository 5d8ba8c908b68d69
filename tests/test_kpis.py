"""Fulfilment KPIs: the marts built by dbt on a generated scenario, GET /v1/kpis against an
independent count, and the KPI page in headless Chromium (Debian's package, driven by Playwright):
the page loads, the charts render with data, a country filter changes them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from oms import tokens
from oms.warehouse import connect

from .net import serve
from .stock_scenario import demo_world

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ["OMS_STATE_DIR"]) / "artifacts"


@pytest.fixture(scope="module")
def scenario(pg_cluster):
    dsn = demo_world(pg_cluster, "oms_test_kpis", "kpi-test", skus=40, stores_per_country=3, orders=80, seed=11)
    with connect(dsn) as conn:
        token = tokens.create_token(conn, "analyst", ["kpis:read"])
        stock_only = tokens.create_token(conn, "stock", ["stock:read"])
    return dsn, token, stock_only


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def _expected_orders(dsn, country=None):
    """Counted straight from the orders mart, not from the KPI marts."""
    with connect(dsn) as conn:
        return conn.execute(
            "SELECT count(*) AS n FROM marts.fct_orders WHERE country_code IS NOT NULL"
            " AND (%(c)s::text IS NULL OR country_code = %(c)s)", {"c": country}).fetchone()["n"]


def test_kpis_json_matches_the_orders(scenario):
    dsn, token, stock_only = scenario
    with TestClient(create_app(dsn)) as client:
        assert client.get("/v1/kpis").status_code == 401
        assert client.get("/v1/kpis", headers=auth(stock_only)).status_code == 403
        body = client.get("/v1/kpis", headers=auth(token)).json()
        assert body["totals"]["orders"] == _expected_orders(dsn) > 0
        assert len(body["countries"]) >= 2
        assert sum(r["orders"] for r in body["by_country"]) == body["totals"]["orders"]
        assert sum(r["orders"] for r in body["trend"]) == body["totals"]["orders"]
        country = body["countries"][1]
        one = client.get("/v1/kpis", params={"country": country.lower()}, headers=auth(token)).json()
        assert one["filters"]["country"] == country
        assert one["totals"]["orders"] == _expected_orders(dsn, country) < body["totals"]["orders"]
        first_day = body["trend"][0]["order_date"]
        day = client.get("/v1/kpis", params={"from": first_day, "to": first_day}, headers=auth(token)).json()
        assert day["totals"]["orders"] == body["trend"][0]["orders"]
        bad = client.get("/v1/kpis", params={"from": "2026-02-02", "to": "2026-02-01"}, headers=auth(token))
        assert bad.status_code == 422 and "after" in bad.json()["error"]["message"]


@pytest.fixture(scope="module")
def served(scenario):
    with serve(create_app(scenario[0])) as url:
        yield url


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed: apt-get install chromium (.ci/run installs it)")
def test_kpi_page_renders_and_filters_in_chromium(scenario, served):
    from playwright.sync_api import sync_playwright

    dsn, token, _ = scenario
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{served}/dashboard#token={token}")
        page.wait_for_selector("#status[data-state=loaded]", timeout=30_000)
        assert errors == []
        # every chart drew marks from the data
        for chart in ("chart-trend", "chart-country"):
            assert int(page.get_attribute(f"#{chart}", "data-points")) > 0, chart
            assert page.locator(f"#{chart} .mark").count() > 0
        countries = page.locator("#chart-country .mark").count()
        assert countries >= 2
        orders_tile = page.locator("[data-kpi=orders] .v")
        assert int(orders_tile.inner_text().replace(",", "")) == _expected_orders(dsn)
        page.screenshot(path=str(ARTIFACTS / "kpi-dashboard.png"), full_page=True)
        # the country filter redraws the page with that country's numbers
        country = page.locator("#country option").nth(2).get_attribute("value")
        page.select_option("#country", country)
        page.wait_for_selector("#status[data-generation='2'][data-state=loaded]", timeout=30_000)
        assert page.locator("#chart-country .mark").count() == 1
        assert int(orders_tile.inner_text().replace(",", "")) == _expected_orders(dsn, country)
        # the token came from the fragment and was not left in the address bar
        assert "token" not in page.url
        browser.close()
