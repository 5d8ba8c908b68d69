# One image for every service of docker-compose.yml: the OMS package (plugins/oms, api), the DAGs,
# the dbt project, the SQL, and Airflow 3 with the Celery provider for the multi-machine executor.
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    AIRFLOW_HOME=/opt/airflow \
    OMS_STATE_DIR=/opt/airflow/oms-state \
    OMS_DBT_TARGET_PATH=/opt/airflow/dbt-target

# libpq for psycopg2 (Airflow's metadata DB driver) comes in its binary wheel; nothing to compile.
RUN useradd --create-home --home-dir /opt/airflow --uid 50000 airflow
WORKDIR /opt/oms

COPY requirements-runtime.lock pyproject.toml README.md ./
# The runtime lock pins the platform without the test and dev groups (no pytest, ruff, playwright…);
# the development tooling (devtools/: sandboxes, demo, local stack) and bench/ are not copied. The Celery provider (CeleryExecutor: `airflow celery worker`) is
# installed under the lock's constraints so it never moves a locked package.
RUN pip install --no-cache-dir uv==0.13.8 \
 && uv pip install --system --no-cache -r requirements-runtime.lock \
 && uv pip install --system --no-cache -c requirements-runtime.lock "apache-airflow-providers-celery==3.26.0"

COPY plugins ./plugins
COPY api ./api
COPY dags ./dags
COPY dbt ./dbt
COPY sql ./sql
# Editable: the package finds sql/ and dbt/ next to plugins/ (oms.settings.REPO_ROOT).
RUN uv pip install --system --no-cache --no-deps -e . \
 && mkdir -p /opt/airflow/plugins /opt/airflow/oms-state /opt/airflow/dbt-target /opt/airflow/auth \
 && chown -R airflow /opt/airflow

USER airflow
EXPOSE 8000 8080
CMD ["oms", "--help"]

# The vendor sandboxes for the compose file's `sandbox` profile: the runtime image plus the
# development tooling. Build with `--target sandboxes`; the default target below has none of it.
FROM runtime AS sandboxes
USER root
COPY devtools ./devtools
RUN uv pip install --system --no-cache --no-deps -e devtools
USER airflow

# The production image (default target): the platform only.
FROM runtime AS platform
