"""The dashboard in a real browser (Debian's headless Chromium, driven by Selenium) beside a
station that is provisioning a lot: the page shows `cm report --json`'s numbers, live.

Without chromium and chromium-driver these tests skip with one line; with CI set they fail
(`.ci/run` installs both). A screenshot of the page is kept as a test artifact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import Dashboard, in_ci, wait_for
from helpers import KEY1, KEY2

from trustprov.line.records import RecordStore
from trustprov.roles import icm

CHIPS = 800
KEYS = (
    "chips",
    "provisioned",
    "already_provisioned",
    "failed",
    "bad_receipt",
    "pending",
    "in_progress",
    "yield_percent",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        reason = "no headless browser: apt-get install chromium chromium-driver"
        if in_ci():
            pytest.fail(f"{reason} (CI is set: the browser tests must run)")
        pytest.skip(reason)
    from selenium import webdriver  # noqa: PLC0415 - only where a browser is there

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1040,1500",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    d.set_page_load_timeout(20)
    yield d
    d.quit()


def _read(d: Any, css: str, attr: str | None = None) -> str | None:
    """One element's text (or attribute) read in one script: the page re-renders on every
    event, so an element found in one call may be replaced before the next reads it."""
    found = d.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "if (!e) return null;"
        "return arguments[1] === null ? e.textContent : e.getAttribute(arguments[1]);",
        css,
        attr,
    )
    assert found is None or isinstance(found, str)
    return found


def _page_counts(d: Any, lot: str) -> dict[str, str]:
    from selenium.webdriver.common.by import By  # noqa: PLC0415 - with the browser

    found: dict[str, str] = d.execute_script(
        "const s = document.querySelector(`section.lot[data-lot='${arguments[0]}']`);"
        "if (!s) return {};"
        "const out = {};"
        "for (const td of s.querySelectorAll('td[data-count]'))"
        "  out[td.dataset.count] = td.textContent;"
        "return out;",
        lot,
    )
    assert isinstance(found, dict)
    del By
    return found


def _report(records: str, lot: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "trustprov",
            "cm",
            "report",
            "--records",
            records,
            "--lot",
            lot,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _as_page(doc: dict[str, Any]) -> dict[str, str]:
    y = doc["yield_percent"]
    return {
        k: (f"{y} %" if y is not None else "-") if k == "yield_percent" else str(doc[k])
        for k in KEYS
    }


def test_the_page_follows_a_running_station(
    browser: Any,
    world: Any,
    tmp_path: Path,
    start_dashboard: Callable[..., Dashboard],
) -> None:
    lot = "LOT-LIVE"
    farm = tmp_path / "live.farm"
    icm.manufacture(world.icm, farm, lot, CHIPS, tmp_path / "live.json")
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    RecordStore(records).close()  # an empty store: the dashboard opens an existing one only
    d = start_dashboard(records, "--listen", "127.0.0.1:0", "--interval", "0.2")
    browser.get(d.url)
    browser.execute_script("window.notReloaded = true;")
    wait_for(
        lambda: _read(browser, "#status", "data-state") == "live",
        what="the event stream",
    )
    station = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trustprov",
            "cm",
            "provision",
            "--farm",
            str(farm),
            "--lot",
            lot,
            "--software",
            str(world.software),
            "--share",
            str(world.share),
            "--bundle",
            str(world.bundle),
            "--records",
            records,
            "--jobs",
            "1",
            "--station",
            "st-1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()  # the provisioned count shown, sampled while the station runs
    try:
        while station.poll() is None:
            shown = _page_counts(browser, lot).get("provisioned")
            if shown is not None:
                seen.add(int(shown))
            time.sleep(0.05)
    finally:
        if station.poll() is None:
            station.kill()
        _, err = station.communicate(timeout=30)
    assert station.returncode == 0, err
    report = _as_page(_report(records, lot))
    wait_for(
        lambda: _page_counts(browser, lot) == report, timeout=10, what=f"the page to show {report}"
    )
    # it changed while the station ran, without a reload
    assert {n for n in seen if 0 < n < CHIPS}, (
        f"no count between 0 and {CHIPS} seen: {sorted(seen)}"
    )
    assert len(seen) >= 2, sorted(seen)
    assert browser.execute_script("return window.notReloaded === true;")
    assert report["provisioned"] == str(CHIPS)
    text = browser.find_element("tag name", "body").text
    assert "st-1" in text
    # the headline is good chips; a clean lot raises no alarm and says it finished
    good = _read(browser, f"section.lot[data-lot='{lot}'] [data-headline]")
    assert good is not None
    assert good.strip() == str(CHIPS)
    assert _read(browser, "section.alarms", "data-alarms") == "0"
    assert _read(browser, f"section.lot[data-lot='{lot}'] [data-count=eta]") == "finished"
    # no asset value reaches the page: the records never held one
    source = browser.page_source.lower()
    for key in (KEY1, KEY2):
        assert key.hex() not in source
    # the CSP (no unsafe-inline) let everything run: the browser reported no violation
    violations = [
        e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]
    ]
    assert not violations, violations
    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    print(
        f"dashboard screenshot: {shot}; counts seen while the station ran: {sorted(seen)}"
    )  # the artifact's path, shown with -s
    assert shot.stat().st_size > 10_000

    # the audit report of the same lot opens from the file alone, styled, with the same numbers
    html = tmp_path / "audit.html"
    subprocess.run(
        [sys.executable, "-m", "trustprov", "cm", "report", "--records", records, "--html", html],
        check=True,
        capture_output=True,
    )
    browser.get(html.as_uri())
    assert _page_counts(browser, lot) == report
    software = browser.find_element("css selector", "dd[data-provenance='software']")
    assert software.text.startswith("trustprov-provisioning ")
    heading = browser.find_element("tag name", "header")
    assert heading.value_of_css_property("background-color") == "rgba(31, 59, 87, 1)"  # styled
    violations = [
        e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]
    ]
    assert not violations, violations


def test_the_browser_needs_the_token_beyond_loopback(
    browser: Any,
    world: Any,
    tmp_path: Path,
    start_dashboard: Callable[..., Dashboard],
) -> None:
    records = f"sqlite:///{tmp_path / 'records.sqlite'}"
    RecordStore(records).close()
    d = start_dashboard(records, "--listen", "127.0.0.2:0", "--interval", "0.2")
    assert d.token_url is not None
    browser.delete_all_cookies()
    browser.get(d.url)
    assert "needs its access token" in browser.find_element("tag name", "body").text
    browser.get(d.token_url)
    assert browser.current_url == d.url  # redirected: the token is out of the address bar
    wait_for(
        lambda: _read(browser, "#status", "data-state") == "live",
        what="the event stream with the cookie",
    )
    assert browser.execute_script("return document.cookie;") == ""  # HttpOnly: no script reads it
    browser.get(d.url)  # a later visit: the cookie, not the token
    assert "trustprov line" in browser.find_element("tag name", "body").text
