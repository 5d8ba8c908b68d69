"""Default secrets stay on the local stack.

OMS_ENV names where the platform runs: `local` (the default: the embedded stack, the tests, the
demo) or anything else (`staging`, `production`, …). Outside `local`, the API and the DAGs
refuse to start while any secret still has the value the local stack ships with, or none:
the Clickpost webhook key, the vendor tokens that are the sandboxes' (Magento, Clickpost, ERP,
SMS) — as OMS_* settings or in Airflow connections — and an Airflow admin password that is a
well-known default. The refusal names the settings, never their values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from oms.settings import SANDBOX_SECRETS

LOCAL_ENV = "local"
# What an Airflow admin password must not be outside the local stack.
WEAK_AIRFLOW_PASSWORDS = {"", "admin", "airflow", "password"}
# Airflow connections (AIRFLOW_CONN_<ID>) whose password is a vendor secret.
VENDOR_CONNECTIONS = ("AIRFLOW_CONN_OMS_MAGENTO", "AIRFLOW_CONN_OMS_CLICKPOST", "AIRFLOW_CONN_OMS_ERP",
                      "AIRFLOW_CONN_OMS_SMS")


class DefaultSecrets(RuntimeError):
    """The platform was started outside the local stack with a default or missing secret."""


def environment(env: Mapping[str, str] | None = None) -> str:
    return (env if env is not None else os.environ).get("OMS_ENV", LOCAL_ENV).strip().lower() or LOCAL_ENV


def _connection_password(value: str) -> str | None:
    try:
        parsed = json.loads(value)
    except ValueError:  # the URI form: scheme://login:password@host
        from urllib.parse import unquote, urlsplit

        password = urlsplit(value).password
        return unquote(password) if password is not None else None
    return parsed.get("password") if isinstance(parsed, dict) else None


def default_secrets(env: Mapping[str, str] | None = None, required: tuple[str, ...] = ()) -> list[str]:
    """The settings that hold a local default, by name: any OMS_* secret set to the local value,
    and the `required` ones (what the component itself uses) also when unset or empty."""
    env = env if env is not None else os.environ
    defaults = set(SANDBOX_SECRETS.values())
    found = [name for name, default in SANDBOX_SECRETS.items()
             if env.get(name) == default or (name in required and not env.get(name))]
    for name in VENDOR_CONNECTIONS:
        if name in env and _connection_password(env[name]) in defaults | {"", None}:
            found.append(f"{name} (password)")
    if "OMS_AIRFLOW_PASSWORD" in env and env["OMS_AIRFLOW_PASSWORD"] in WEAK_AIRFLOW_PASSWORDS:
        found.append("OMS_AIRFLOW_PASSWORD")
    passwords_file = env.get("OMS_AIRFLOW_PASSWORDS_FILE") or env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    if passwords_file and os.path.exists(passwords_file):
        try:
            known = json.loads(open(passwords_file).read())
        except ValueError:
            known = {}
        if isinstance(known, dict) and any(v in WEAK_AIRFLOW_PASSWORDS for v in known.values()):
            found.append(f"the Airflow admin password in {passwords_file}")
    return found


def check(component: str, env: Mapping[str, str] | None = None, required: tuple[str, ...] = ()) -> None:
    """Raise DefaultSecrets when `component` (the API, the DAGs) must not start here; `required`
    names the OMS_* secrets it uses itself (they must be set)."""
    env = env if env is not None else os.environ
    where = environment(env)
    if where == LOCAL_ENV:
        return
    if env.get("OMS_SMS_URL"):  # SMS is sent: its key is used
        required = (*required, "OMS_SMS_KEY")
    found = default_secrets(env, required)
    if found:
        raise DefaultSecrets(f"{component} refuses to start with OMS_ENV={where}: these secrets still hold the "
                             f"local stack's defaults or are empty: {', '.join(found)}. Set them (docs/deployment.md).")
