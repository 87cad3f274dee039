"""Run the demo: a Celery worker (with beat, for stale-job recovery) and the web server.

Both stop together on Ctrl-C. Used by `make demo`.
"""

import argparse
import signal
import subprocess
import sys
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


if __name__ == "__main__":
    sys.exit(main())
