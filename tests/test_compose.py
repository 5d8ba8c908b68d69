"""docker-compose.yml, checked without a Docker engine (none runs here): it parses, and every
service's build, command, healthcheck, environment and dependency refers to something that exists —
files in the repo, `oms` subcommands, Airflow CLI commands and configuration options, importable
modules — and the Airflow processes share one Celery/metadata configuration."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
ENV_EXAMPLE = REPO / "deploy" / "compose.env.example"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
ONE_SHOT = {"migrate", "airflow-init"}
AIRFLOW_SERVICES = [name for name, s in SERVICES.items() if s.get("command", [None])[0] == "airflow"]
# Options the Celery provider declares (not installed on this machine; the image installs it).
CELERY_OPTIONS = {"broker_url", "result_backend", "worker_concurrency"}
SHARED_AIRFLOW_KEYS = (
    "AIRFLOW__CORE__EXECUTOR", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW_CONN_OMS_WAREHOUSE",
)


def example_env() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip() or f"secret-{key.strip().lower()}"
    return values


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}; $$ is a literal $."""
    def one(match: re.Match) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return ""

    return VARIABLE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v), example_env()) for k, v in env.items()}


def command(service: dict) -> list[str]:
    return [interpolate(str(part), example_env()) for part in service.get("command", [])]


def healthcheck_argv(service: dict) -> list[str]:
    test = service["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        return shlex.split(interpolate(test[1], example_env()))
    assert test[0] == "CMD", test
    return [interpolate(part, example_env()) for part in test[1:]]


@pytest.fixture(scope="module")
def airflow_parser(airflow_env):
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def test_the_services_of_a_multi_machine_stack():
    assert {"warehouse-db", "airflow-db", "redis", "migrate", "airflow-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "api", "sandboxes"} <= set(SERVICES)
    assert SERVICES["airflow-worker"]["deploy"]["replicas"] >= 2
    api = command(SERVICES["api"])
    assert int(api[api.index("--workers") + 1]) >= 2
    # the sandboxes are optional, and nothing that always runs needs them
    assert SERVICES["sandboxes"]["profiles"] == ["sandbox"]
    for name, service in SERVICES.items():
        if "profiles" not in service:
            assert "sandboxes" not in (service.get("depends_on") or {}), name


def test_every_variable_is_documented_in_the_env_example():
    text = (REPO / "docker-compose.yml").read_text()
    used = {m["name"] for m in VARIABLE.finditer(text.replace("$$", ""))}
    assert used <= set(example_env()), used - set(example_env())
    for service in SERVICES.values():  # and with them set, every value interpolates
        environment(service)
        command(service)


def test_images_are_built_from_files_that_exist():
    dockerfile_text = None
    for name, service in SERVICES.items():
        if "build" in service:
            context = REPO / service["build"]["context"]
            dockerfile = context / service["build"]["dockerfile"]
            assert dockerfile.is_file(), name
            dockerfile_text = dockerfile.read_text()
        else:
            image = service["image"]
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag ({image})"
    copied = re.findall(r"^COPY\s+(.+?)\s+\S+$", dockerfile_text, re.M)
    for sources in copied:
        for source in sources.split():
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which is not in the repo"
    assert "-r requirements-runtime.lock" in dockerfile_text  # the lock without the test/dev groups
    # the CeleryExecutor needs the Celery provider, pinned and under the lock's constraints
    assert re.search(r'-c requirements-runtime\.lock "apache-airflow-providers-celery==[\d.]+"', dockerfile_text)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".oms" in ignored and ".git" in ignored


def check_argv(argv: list[str], service_name: str, parser, env: dict[str, str]) -> None:
    program, args = argv[0], argv[1:]
    if program == "oms":
        from oms.cli import app

        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0, f"{service_name}: `oms {' '.join(args)}` is not a command"
    elif program == "airflow":
        if args[:2] == ["celery", "worker"]:
            assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", service_name
            return  # a provider command: the image installs the provider (test above)
        try:
            parser.parse_args(args)
        except SystemExit as exc:
            raise AssertionError(f"{service_name}: `airflow {' '.join(args)}` is not an Airflow command") from exc
    elif program == "uvicorn":
        module, _, attr = args[0].partition(":")
        factory = getattr(importlib.import_module(module), attr)
        assert callable(factory) and "--factory" in args, service_name
    elif program == "python" and args[0] == "-m":
        spec = importlib.util.find_spec(args[1])
        assert spec is not None, f"{service_name}: no module {args[1]}"
        source = Path(spec.origin).read_text()
        for flag in (a for a in args[2:] if a.startswith("--")):
            assert f'"{flag}"' in source, f"{service_name}: {args[1]} has no option {flag}"
    elif program == "python" and args[0] == "-c":
        compile(args[1], service_name, "exec")
    elif program == "celery":
        assert args[:2] == ["--app", "airflow.providers.celery.executors.celery_executor.app"], service_name
    else:
        assert program in {"postgres", "pg_isready", "redis-server", "redis-cli"}, f"{service_name}: {program}?"
        assert "build" not in SERVICES[service_name], f"{service_name}: {program} is not in the OMS image"


def test_commands_and_healthchecks_name_things_that_exist(airflow_parser):
    for name, service in SERVICES.items():
        env = environment(service)
        if service.get("command"):
            check_argv(command(service), name, airflow_parser, env)
        if "healthcheck" in service:
            argv = healthcheck_argv(service)
            if argv[0] in {"redis-cli"}:
                continue  # a shell pipeline in the redis image
            check_argv(argv, name, airflow_parser, env)


def test_every_long_running_service_has_a_healthcheck_and_dependencies_wait_on_them():
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health, which has none"
            else:
                assert rule["condition"] == "service_completed_successfully" and target in ONE_SHOT, (name, target)


def test_environment_names_settings_that_exist(airflow_env):
    from airflow.configuration import retrieve_configuration_description

    described = retrieve_configuration_description(include_providers=True)
    sources = "\n".join(p.read_text() for folder in ("plugins", "api", "devtools") for p in (REPO / folder).rglob("*.py"))
    for name, service in SERVICES.items():
        for key, value in environment(service).items():
            if key.startswith("OMS_"):
                assert f'"{key}"' in sources, f"{name}: {key} is read nowhere in plugins/, api/ or devtools/"
            elif key.startswith("AIRFLOW__"):
                section, option = (part.lower() for part in key[len("AIRFLOW__"):].split("__", 1))
                if section == "celery":
                    assert option in CELERY_OPTIONS, key
                elif section == "cosmos":
                    cosmos = Path(importlib.util.find_spec("cosmos").origin).parent
                    assert any(f'"{option}"' in p.read_text() for p in cosmos.rglob("settings.py")), key
                else:
                    assert option in described.get(section, {}).get("options", {}), f"{name}: {key} is no Airflow option"
            elif key.startswith("AIRFLOW_CONN_"):
                conn = json.loads(value)
                assert conn["host"] in SERVICES, f"{key} points at {conn['host']}, no such service"
                target = SERVICES[conn["host"]]
                published = {int(p.split(":")[-1]) for p in target.get("ports", [])} | {5432}
                assert conn["port"] in published, key


def test_airflow_processes_share_one_celery_and_metadata_configuration():
    assert set(AIRFLOW_SERVICES) >= {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                                     "airflow-triggerer", "airflow-worker"}
    envs = {name: environment(SERVICES[name]) for name in AIRFLOW_SERVICES}
    first = envs["airflow-scheduler"]
    for name, env in envs.items():
        for key in SHARED_AIRFLOW_KEYS:
            assert env.get(key) == first[key], f"{name}: {key} differs from the scheduler's"
    assert first["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"

    broker = urlparse(first["AIRFLOW__CELERY__BROKER_URL"])
    assert broker.scheme == "redis" and broker.hostname == "redis" and broker.port == 6379
    assert broker.password == environment(SERVICES["redis"])["REDIS_PASSWORD"]
    assert broker.username in (None, "", "default")  # requirepass sets the default user's password
    metadata_db = environment(SERVICES["airflow-db"])
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        url = urlparse(first[key])
        assert (url.hostname, url.port, url.username, url.password, url.path.lstrip("/")) == (
            "airflow-db", 5432, metadata_db["POSTGRES_USER"], metadata_db["POSTGRES_PASSWORD"],
            metadata_db["POSTGRES_DB"]), key
    warehouse = json.loads(first["AIRFLOW_CONN_OMS_WAREHOUSE"])
    warehouse_db = environment(SERVICES["warehouse-db"])
    assert (warehouse["login"], warehouse["password"], warehouse["schema"]) == (
        warehouse_db["POSTGRES_USER"], warehouse_db["POSTGRES_PASSWORD"], warehouse_db["POSTGRES_DB"])
    assert first["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/oms/dags" and (REPO / "dags").is_dir()

    # tasks reach the api-server's execution API; the OMS API reaches its REST API, with its password file
    api_server = command(SERVICES["airflow-apiserver"])
    port = int(api_server[api_server.index("--port") + 1])
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{port}/execution/"
    api_env = environment(SERVICES["api"])
    assert api_env["OMS_AIRFLOW_URL"] == f"http://airflow-apiserver:{port}"
    assert Path(api_env["OMS_AIRFLOW_PASSWORDS_FILE"]).parent.as_posix() in " ".join(SERVICES["api"]["volumes"])
    assert api_env["OMS_AIRFLOW_PASSWORDS_FILE"] == first["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    dsn = urlparse(api_env["OMS_WAREHOUSE_DSN"])
    assert (dsn.hostname, dsn.password) == ("warehouse-db", warehouse_db["POSTGRES_PASSWORD"])


AIRFLOW_COMPONENTS = {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                      "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}


def test_airflow_components_restart_and_are_judged_by_the_monitor_endpoint():
    """The same judge as `oms up` and /v1/pipeline/health: Airflow's /api/v2/monitor/health."""
    for name, component in AIRFLOW_COMPONENTS.items():
        service = SERVICES[name]
        assert service["restart"] in {"unless-stopped", "always"}, name
        argv = healthcheck_argv(service)
        assert argv[:3] == ["python", "-m", "oms.integrations.airflow"], name
        assert argv[argv.index("--component") + 1] == component, name
        url = argv[argv.index("--url") + 1]
        assert urlparse(url).port == 8080 and urlparse(url).hostname in {"localhost", "airflow-apiserver"}, name


@pytest.mark.parametrize(("scheduler", "exit_code"), [("healthy", 0), ("unhealthy", 1)])
def test_the_healthcheck_command_answers_by_the_monitor(scheduler, exit_code):
    import subprocess
    import sys

    from fastapi import FastAPI

    from .net import free_port, serve

    app = FastAPI()

    @app.get("/api/v2/monitor/health")
    async def monitor():
        beat = "2026-03-05T12:00:00+00:00"
        return {"metadatabase": {"status": "healthy"},
                "scheduler": {"status": scheduler, "latest_scheduler_heartbeat": beat},
                "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": beat},
                "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": beat}}

    argv = healthcheck_argv(SERVICES["airflow-scheduler"])
    with serve(app) as url:
        argv[argv.index("--url") + 1] = url
        ran = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=60)
        assert ran.returncode == exit_code, ran.stdout + ran.stderr
        triggerer = [*argv[1:argv.index("--component") + 1], "triggerer", "--url", url]
        assert subprocess.run([sys.executable, *triggerer], capture_output=True, timeout=60).returncode == 0
    gone = subprocess.run([sys.executable, *argv[1:-1], f"http://127.0.0.1:{free_port()}"], capture_output=True,
                          text=True, timeout=60)
    assert gone.returncode == 1 and "not answering" in gone.stdout
