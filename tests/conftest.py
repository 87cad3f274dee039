import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings

from tests.helpers import Team

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
DPO_SAMPLE = "dpo_zh_demo_200.jsonl"
ALIGNBENCH_QUESTIONS = "alignbench_v1.1_questions.jsonl"
TEST_OUTPUT = ROOT / "test-output"

# Browser tests drive Playwright's sync API, which runs an event loop in the test thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _test_redis_url():
    # Tests use their own Redis database (TEST_REDIS_DB, default 15), emptied at the start of
    # the session; give parallel checkouts different numbers.
    # Under pytest-xdist each worker (gw0, gw1, …) takes the next number down, as pytest-django gives each
    # its own database: one worker's flush must never empty another's queue.
    parts = urlsplit(settings.REDIS_URL)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(os.environ.get("TEST_REDIS_DB", "15")) - int(worker.removeprefix("gw") or 0)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", "", ""))


def shared_data(name, module=False):
    """The path of a file of the real Chinese sample data in ../shared/data, which is not part of the
    project. Where it is missing (a bare clone) the test skips and says why; where REQUIRE_SHARED_DATA is
    set (CI, which has the data) it fails instead, so those tests cannot silently stop running there.
    `module=True` skips a whole module from its top level."""
    path = SHARED_DATA / name
    if path.is_file():
        return path
    reason = f"needs the real sample data {path}, which lies outside the project (../shared/data) and is absent here"
    if os.environ.get("REQUIRE_SHARED_DATA"):
        pytest.fail(f"{reason}; REQUIRE_SHARED_DATA is set, so this is an error", pytrace=False)
    pytest.skip(reason, allow_module_level=module)


@pytest.fixture(scope="session", autouse=True)
def test_cache():
    """The cache in the tests' own Redis database, emptied at the start of the session: never a dev
    server's keys, nor a previous session's counts under ids this one reuses. The processes the tests start
    (REDIS_URL=_test_redis_url()) share it."""
    import redis
    from django.test import override_settings

    url = _test_redis_url()
    redis.Redis.from_url(url).flushdb()
    with override_settings(CACHES={"default": {**settings.CACHES["default"], "LOCATION": url}}):
        yield


@pytest.fixture(scope="session", autouse=True)
def short_lived_connections():
    # Threads that serve or work (live server, thread worker) close their connection after each
    # request or task, so none is left open to block the test database's teardown.
    from django.db import connections

    for alias in connections:
        connections.settings[alias]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session")
def celery_test_config():
    """Point the Celery app at a Redis database and queue of this test session's own."""
    import redis

    from coigp_web.celery import app

    url = _test_redis_url()
    redis.Redis.from_url(url).flushdb()
    queue = f"coigp-test-{uuid.uuid4().hex[:8]}"
    app.conf.update(broker_url=url, task_default_queue=queue, task_always_eager=False)
    return {"broker_url": url, "queue": queue, "app": app}


@pytest.fixture
def team(db):
    return Team.create()


@pytest.fixture
def short_lease(settings):
    settings.JOB_LEASE_SECONDS = 2
    return 2


@pytest.fixture
def thread_worker(transactional_db, celery_test_config):
    """A real Celery worker (celery.contrib.testing) consuming from Redis in a thread of this process."""
    from celery.contrib.testing.worker import start_worker

    app = celery_test_config["app"]
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, loglevel="WARNING") as worker:
        yield worker


def database_url_for_tests():
    db = settings.DATABASES["default"]
    auth = quote(db["USER"]) + (":" + quote(db["PASSWORD"]) if db["PASSWORD"] else "")
    host = db["HOST"]
    if host.startswith("/"):
        return f"postgresql://{auth}@/{db['NAME']}?host={host}"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgresql://{auth}@{host or '127.0.0.1'}{port}/{db['NAME']}"


class WorkerProcess:
    """`celery worker` as a separate process on the test database, so a test can SIGKILL it."""

    def __init__(self, config, lease_seconds, log_path):
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url_for_tests(),
            REDIS_URL=config["broker_url"],
            CELERY_QUEUE=config["queue"],
            JOB_LEASE_SECONDS=str(lease_seconds),
            DATABASE_CONN_MAX_AGE="0",
        )
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "coigp_web", "worker", "--pool", "prefork", "--concurrency", "1",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def worker_processes(transactional_db, celery_test_config, tmp_path):
    started = []

    def start(lease_seconds=2):
        worker = WorkerProcess(celery_test_config, lease_seconds, tmp_path / "worker.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, timeout=60, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail("REQUIRE_BROWSER is set but Debian's chromium is not installed (apt-get install chromium)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium fonts-noto-cjk)")
    return path


@pytest.fixture
def browser_language():
    """The UI language the browser starts with: English, so that browser tests read the English UI
    whatever catalogues exist (tests/test_browser_i18n.py switches to Chinese in the page). The
    browser keeps the zh-CN locale of a Chinese user (CJK font fallback, Accept-Language); the
    language is the cookie that the header's language selector sets, which wins over that header."""
    return "en"


@pytest.fixture
def browser_page(chromium_path, request, browser_language):
    from playwright.sync_api import sync_playwright

    TEST_OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        # live_server serves on localhost; a host-only cookie for it holds on any port, and the
        # language selector's response replaces it.
        context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": browser_language,
                              "url": "http://localhost/"}])
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        page.screenshot(path=str(TEST_OUTPUT / f"{request.node.name}.png"), full_page=True)
        browser.close()


@pytest.fixture(autouse=True)
def default_language():
    """Each test starts in the site's language: a view or test that activated another (zh-hans) in this thread
    must not leak it into the next test's messages."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def project_celery_app_stays_current():
    """The project's shared tasks send through Celery's current app. A test that makes another app current
    (Celery(...) sets itself current unless told not to) would send every later test's jobs of this process
    to that app's broker; fail the test that does it, not the one that happens to run next."""
    from celery import current_app

    from coigp_web.celery import app

    yield
    assert current_app._get_current_object() is app, "this test left another Celery app current"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for production; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def end_stray_connections(django_db_setup, django_db_blocker):
    """At the very end, close connections that worker processes or threads left behind, so the
    test database can be dropped (teardown runs before django_db_setup's)."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
