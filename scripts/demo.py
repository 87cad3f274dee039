"""Run the demo: a Celery worker (with beat, for stale-job recovery) and the web server.

Both stop together on Ctrl-C. Used by `make demo`.
"""

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="8000")
    args = parser.parse_args()
    (ROOT / "var").mkdir(exist_ok=True)
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "coigp_web", "worker", "-B", "--loglevel", "INFO", "--concurrency", "2",
         "--schedule", str(ROOT / "var" / "celerybeat-schedule")],
        cwd=ROOT,
    )
    web = subprocess.Popen(
        [str(BIN / "gunicorn"), "coigp_web.wsgi", "--bind", f"127.0.0.1:{args.port}", "--workers", "2",
         "--timeout", "300", "--access-logfile", "-"],
        cwd=ROOT,
    )
    announced = False
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
        for process in (web, worker):
            if process.poll() is None:
                process.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        if not announced and not stopping and _answers(int(args.port)):
            announced = True
            print(banner(args.port), flush=True)
        for process in (web, worker):
            try:
                code = process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                continue
            if not stopping:
                print(f"{process.args[0]} exited with {code}; stopping the demo", file=sys.stderr)
                stop()
        if stopping and web.poll() is not None and worker.poll() is not None:
            return 0


def _answers(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def banner(port):
    """The last thing the demo prints before the logs: where to go and how to log in (the password that
    ensure_admin generated, kept in var/admin-password, since its first print scrolled away)."""
    kept = ROOT / "var" / "admin-password"
    if kept.exists():
        username, password = kept.read_text(encoding="utf-8").split()[:2]
        login = f"log in as {username} with password {password}  (kept in {kept}; change it in the admin)"
    else:
        login = "log in with the admin account (password from COIGP_ADMIN_PASSWORD, or as printed when it was made)"
    line = "=" * 78
    return (f"\n{line}\n  coigp-web is ready on http://127.0.0.1:{port}/\n  {login}\n"
            f"  Open the 'COIG-P sample' dataset, or upload a file on a dataset page. Ctrl-C stops everything.\n"
            f"{line}\n")


if __name__ == "__main__":
    sys.exit(main())
