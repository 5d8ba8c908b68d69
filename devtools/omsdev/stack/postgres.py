"""The project's own Postgres cluster (Debian's PostgreSQL 15 server binaries).

Postgres refuses to run as root, and CI runs as root: then every server command runs as the
unprivileged `postgres` user through runuser, and the data directory is owned by that user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from pathlib import Path

import psycopg
from psycopg import sql

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
SERVER_USER = "postgres"


class PostgresError(RuntimeError):
    pass


def pg_bin(name: str) -> str:
    for folder in (os.environ.get("OMS_PG_BIN", ""), *PG_BIN_CANDIDATES):
        if folder and Path(folder, name).exists():
            return str(Path(folder, name))
    found = shutil.which(name)
    if found:
        return found
    raise PostgresError(
        f"PostgreSQL server binary '{name}' not found. Install Debian's server: "
        "apt-get install -y postgresql-15 (or set OMS_PG_BIN to its bin folder)."
    )


def running_as_root() -> bool:
    return os.geteuid() == 0


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--", *cmd] if running_as_root() else cmd


def server_user_can_reach(path: Path) -> bool:
    """Whether the server's user can traverse every parent of `path` (and create it)."""
    if not running_as_root():
        return True
    probe = path
    while not probe.exists():
        probe = probe.parent
    result = subprocess.run(
        ["runuser", "-u", SERVER_USER, "--", "test", "-x", str(probe), "-a", "-r", str(probe)],
        capture_output=True,
    )
    return result.returncode == 0


def _chown_to_server_user(path: Path) -> None:
    if running_as_root():
        entry = pwd.getpwnam(SERVER_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def is_initialised(data_dir: Path) -> bool:
    return (data_dir / "PG_VERSION").exists()


def init_cluster(data_dir: Path, superuser: str) -> None:
    if is_initialised(data_dir):
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    _chown_to_server_user(data_dir.parent)
    _chown_to_server_user(data_dir)
    os.chmod(data_dir, 0o700)
    # Trust on loopback only: the cluster listens on 127.0.0.1 and is a local development stack.
    cmd = [pg_bin("initdb"), "-D", str(data_dir), "-U", superuser, "--auth=trust", "-E", "UTF8", "--no-instructions"]
    result = subprocess.run(_as_server_user(cmd), capture_output=True, text=True)
    if result.returncode != 0:
        raise PostgresError(f"initdb failed:\n{result.stderr or result.stdout}")


def is_running(data_dir: Path) -> bool:
    if not is_initialised(data_dir):
        return False
    result = subprocess.run(_as_server_user([pg_bin("pg_ctl"), "-D", str(data_dir), "status"]), capture_output=True)
    return result.returncode == 0


def server_pid(data_dir: Path) -> int | None:
    """The postmaster's pid from postmaster.pid, if that process is alive."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def start(data_dir: Path, port: int, host: str = "127.0.0.1", durable: bool = True) -> None:
    if is_running(data_dir):
        return
    options = [
        f"-p {port}",
        f"-c listen_addresses={host}",
        f"-k {data_dir}",  # socket next to the data, reachable by the server user
        "-c max_connections=200",
        "-c shared_buffers=256MB",
    ]
    if not durable:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    log = data_dir.parent / "postgres.log"
    if running_as_root() and not log.exists():
        log.touch()
        _chown_to_server_user(log)
    cmd = [pg_bin("pg_ctl"), "-D", str(data_dir), "-w", "-t", "60", "-l", str(log), "-o", " ".join(options), "start"]
    result = subprocess.run(_as_server_user(cmd), capture_output=True, text=True)
    if result.returncode != 0:
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise PostgresError(f"Postgres did not start on port {port}:\n{result.stderr}\n{tail}")


def stop(data_dir: Path) -> bool:
    if not is_running(data_dir):
        return False
    cmd = [pg_bin("pg_ctl"), "-D", str(data_dir), "-w", "-m", "fast", "stop"]
    subprocess.run(_as_server_user(cmd), capture_output=True, check=False)
    return True


def ensure_database(admin_dsn: str, name: str) -> bool:
    """Create database `name` if missing; True when it was created."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def data_dir(settings) -> Path:
    """The cluster's data directory.

    Inside the repo's ignored state folder when the server's user can reach it; otherwise (the
    repo lives under /root, which is 0700, and Postgres refuses to run as root) a folder under
    /tmp named after the repo path, so two checkouts never share a cluster.
    """
    configured = os.environ.get("OMS_PG_DATA_DIR")
    if configured:
        return Path(configured)
    local = settings.state_dir / "pgdata"
    if server_user_can_reach(settings.state_dir):
        return local
    digest = hashlib.sha1(str(settings.state_dir).encode()).hexdigest()[:10]
    return Path("/tmp") / f"oms-pg-{digest}" / "pgdata"
