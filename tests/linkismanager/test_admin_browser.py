"""The staff console in a real browser: headless Chromium (Debian's package, /usr/bin/chromium) driven
by Playwright against the live test server, killing a real engine of a real ECM agent.

Chromium is installed by tests/install_browser.sh (run by `make test`); Playwright's own browser
download is never used. Without Chromium the test skips, except under CI=true, where it fails. On a
failure a screenshot of the page is saved under the test's tmp path; the failure report names it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engines.models import EngineConn
from engines.services import EngineRequest, admit_engine
from linkismanager.choices import NodeStatus
from linkismanager.models import AuditEntry
from linkismanager.resources import LoadInstance
from tests.conftest import PASSWORD
from tests.engines import conftest as engines_conftest
from tests.engines.conftest import DEADLINE, wait_for
from tests.factories import GIB

# The real-agent fixture of tests/engines, shared with this folder.
start_agent = engines_conftest.start_agent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    # This machine's network is closed: without these Chromium keeps calling home and failing.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
# Playwright waits this long (ms) for a page or an element before failing.
PAGE_TIMEOUT_MS = 30_000


def _unavailable(reason: str) -> None:
    """Under CI the browser test must run: a missing browser fails it. Elsewhere it skips."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test may not be skipped)")
    pytest.skip(f"{reason}; run tests/install_browser.sh as root to install it")


class Chromium:
    """Headless Chromium for one test, with a fresh profile, opened by the test when it needs it.

    Playwright's sync API marks an event loop as running in this thread while a browser is open,
    and Django refuses ORM calls then (SynchronousOnlyOperation). So a test prepares its data
    first, opens the browser, and closes it before it reads the database again. It is registered
    as a pytest plugin for its test: when the test's call ends, a failure saves a screenshot (named
    in the failure report) and the browser is closed, before any fixture's teardown uses the ORM.
    """

    def __init__(self, item: pytest.Item, tmp_path: Path) -> None:
        self.item = item
        self.profile = tmp_path / "chromium-profile"
        self.screenshots = tmp_path / "screenshots"
        self._playwright = self._context = self.page = None

    def open(self):
        from playwright.sync_api import sync_playwright

        assert self._playwright is None, "the browser is already open"
        self._playwright = sync_playwright().start()
        self._context = self._playwright.chromium.launch_persistent_context(
            str(self.profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        self._context.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page = self._context.pages[0] if self._context.pages else self._context.new_page()
        return self.page

    def close(self) -> None:
        """Close the browser and stop Playwright; kill any Chromium process of this profile left."""
        playwright, context = self._playwright, self._context
        self._playwright = self._context = self.page = None
        try:
            if context is not None:
                context.close()
        finally:
            try:
                if playwright is not None:
                    playwright.stop()
            finally:
                marker = f"--user-data-dir={self.profile}"
                for process in psutil.process_iter(["cmdline"]):
                    if marker in (process.info["cmdline"] or []):
                        with contextlib.suppress(psutil.Error):
                            process.kill()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        if item is self.item and report.when == "call":
            if report.failed and self.page is not None:
                report.sections.append(("browser screenshot", self._screenshot()))
            self.close()
        return report

    def _screenshot(self) -> str:
        self.screenshots.mkdir(parents=True, exist_ok=True)
        path = self.screenshots / f"{self.item.name}.png"
        try:
            self.page.screenshot(path=str(path), full_page=True)
        except Exception as error:  # the browser itself may be what failed
            return f"no screenshot: {error!r}"
        return f"saved to {path} (page: {self.page.url})"


@pytest.fixture
def chromium(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Chromium]:
    """Headless Chromium for the test (see Chromium); always closed at the end."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (Debian package chromium)")
    if importlib.util.find_spec("playwright") is None:
        _unavailable("Playwright is not installed (requirements/dev.txt)")
    browser = Chromium(request.node, tmp_path)
    request.config.pluginmanager.register(browser)
    try:
        yield browser
    finally:
        request.config.pluginmanager.unregister(browser)
        browser.close()


def _pid_alive(engine: EngineConn) -> bool:
    """Whether the engine's own process (not a later one with a reused pid) still runs."""
    try:
        process = psutil.Process(engine.pid)
        return (
            process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - engine.process_started_at) < 0.05
        )
    except psutil.NoSuchProcess:
        return False


def test_staff_kill_a_real_engine_from_the_admin(chromium, live_server, make_user, start_agent):
    # The data first: a superuser, a real agent and a real python engine, running (Unlock).
    make_user("root", superuser=True)
    agent = start_agent()
    ecm_pk = agent.ecm.pk
    request = EngineRequest("alice", "IDE", "python", "python3", LoadInstance(1 * GIB, 1, 1))
    engine = admit_engine(request, actor="alice")

    def unlocked() -> bool:
        assert agent.process.poll() is None, f"the agent died:\n{agent.log.read_text(errors='replace')[-3000:]}"
        engine.refresh_from_db()
        return engine.status == NodeStatus.UNLOCK

    wait_for(unlocked, what=f"engine {engine.pk} to reach Unlock (now {engine.status}: {engine.end_reason})")
    assert engine.pid and _pid_alive(engine)

    # From here until chromium.close(), no ORM calls (see Chromium).
    page = chromium.open()
    from playwright.sync_api import expect

    stylesheets: dict[str, tuple[int, str]] = {}

    def record_stylesheet(response) -> None:
        if response.url.endswith(".css"):
            stylesheets[response.url] = (response.status, response.headers.get("content-type", ""))

    page.on("response", record_stylesheet)

    # Log in through the admin's login form.
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "root")
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#user-tools strong").text_content() == "root"

    # The admin's stylesheets are served by the live server, and applied.
    base_css = next((url for url in stylesheets if url.endswith("/admin/css/base.css")), None)
    assert base_css, f"the admin's base.css was not requested: {sorted(stylesheets)}"
    assert stylesheets[base_css][0] == 200, stylesheets[base_css]
    assert stylesheets[base_css][1].startswith("text/css"), stylesheets[base_css]
    header_background = page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor")
    assert header_background not in ("", "transparent", "rgba(0, 0, 0, 0)"), "the admin's styles are not applied"

    # The ECM list shows the agent's ECM; its page opens.
    page.click("a[href='/admin/linkismanager/engineconnmanager/']")
    page.wait_for_url("**/admin/linkismanager/engineconnmanager/")
    page.locator("#result_list").get_by_role("link", name=agent.instance, exact=True).click()
    page.wait_for_url(f"**/admin/linkismanager/engineconnmanager/{ecm_pk}/change/")
    assert page.locator(".field-instance .readonly").inner_text() == agent.instance

    # The engine list, then the engine's own page.
    page.click("a[href='/admin/engines/engineconn/']")
    page.wait_for_url("**/admin/engines/engineconn/")
    page.locator("#result_list").get_by_role("link", name=engine.instance, exact=True).click()
    page.wait_for_url(f"**/admin/engines/engineconn/{engine.pk}/change/")
    assert page.locator(".field-status .readonly").inner_text() == NodeStatus.UNLOCK.label
    assert page.locator(".field-pid .readonly").inner_text() == str(engine.pid)

    # Back to the list: select the engine and run "Kill selected engines", with a reason.
    page.click("a[href='/admin/engines/engineconn/']")
    page.wait_for_url("**/admin/engines/engineconn/")
    page.check(f"#result_list input.action-select[value='{engine.pk}']")
    page.select_option("select[name=action]", label="Kill selected engines")
    page.fill("input[name=reason]", "browser test")
    page.click("#changelist-form .actions button[type=submit]")
    expect(page.locator("ul.messagelist")).to_contain_text("Kill started for 1 engine.")

    # Reloading shows it end: ShuttingDown, with its end recorded.
    row = page.locator("#result_list tbody tr").filter(has=page.get_by_role("link", name=engine.instance, exact=True))
    deadline = time.monotonic() + DEADLINE
    while True:
        page.reload()
        status = row.locator("td.field-status").inner_text()
        ended = row.locator("td.field-ended_at").inner_text()
        if status == NodeStatus.SHUTTING_DOWN.label and ended not in ("", "-"):
            break
        assert time.monotonic() < deadline, f"the page does not show the engine ended (status {status}, ended {ended})"
        time.sleep(0.5)
    chromium.close()

    engine.refresh_from_db()
    assert engine.status == NodeStatus.SHUTTING_DOWN and engine.ended_at is not None
    assert engine.kill_requested_by == "root"
    kill = AuditEntry.objects.get(action="kill_engine")
    assert (kill.actor, kill.via, kill.after) == ("root", "admin", {"reason": "browser test"})
    assert not _pid_alive(engine), f"the engine's process {engine.pid} still runs"
