"""The drivers demo page in a real headless Chromium: log in, start the demo, watch drivers move.

Skipped without Debian's Chromium or playwright (tests/e2e/browser.py).
"""

import json
import re
import signal
import sys
import time

import pytest

from djafka.drivers import CITY
from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    create_operator,
    log_in,
    sync_playwright_or_skip,
)
from tests.integration.cluster import running_cluster

pytestmark = pytest.mark.slow

SCREENSHOT = SCREENSHOTS / "drivers_demo.png"
DRIVERS = 150

sync_playwright = sync_playwright_or_skip()

# Pixels of the map in the drivers' colours: saturated, where streets and districts are greys.
DRIVER_PIXELS_JS = """() => {
  const canvas = document.getElementById("city");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const found = [];
  for (let i = 0; i < data.length; i += 4) {
    const hi = Math.max(data[i], data[i + 1], data[i + 2]);
    const lo = Math.min(data[i], data[i + 1], data[i + 2]);
    if (hi - lo > 100) found.push(i / 4);
  }
  return {width: canvas.width, height: canvas.height, found: found,
          box: canvas.getBoundingClientRect().toJSON()};
}"""
# How many driver pixels differ from those kept in window.firstDriverPixels: the drivers moved.
DRIVER_PIXELS_MOVED_JS = f"""() => {{
  const first = window.firstDriverPixels;
  const now = new Set(({DRIVER_PIXELS_JS})().found);
  let changed = 0;
  for (const pixel of now) if (!first.has(pixel)) changed++;
  for (const pixel of first) if (!now.has(pixel)) changed++;
  return changed;
}}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("drivers-page"), broker_count=1) as cluster:
        cluster.start_web()
        cluster.manage("bootstrap_demo")
        create_operator(cluster)
        yield cluster


def district_rows(page) -> dict[str, int]:
    return page.eval_on_selector_all(
        "#districts tbody tr",
        "rows => Object.fromEntries(rows.map(r => [r.dataset.district, "
        "Number(r.cells[1].textContent.replace(/,/g, ''))]))",
    )


def test_operator_watches_drivers_move_on_the_city_map(site):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{site.base_url}/demo/drivers/")
        # Not logged in: the admin login, then back to the page.
        log_in(page)
        page.wait_for_url("**/demo/drivers/**")
        page.click("header a:text('Drivers demo')")
        page.wait_for_url("**/demo/drivers/")
        assert page.locator("#tenant").input_value() == "demo"
        assert district_rows(page) == {d.name: 0 for d in CITY.districts}

        # No topic yet: the page says how to start the demo, and draws no driver.
        page.wait_for_function(
            "document.getElementById('status').textContent === 'waiting for topic'"
        )
        assert page.locator("#hint").is_visible()
        assert "manage.py drivers_demo" in page.locator("#hint").text_content()
        assert page.evaluate(DRIVER_PIXELS_JS)["found"] == []

        demo = site.spawn("drivers-demo", [
            sys.executable, "manage.py", "drivers_demo", "--drivers", str(DRIVERS), "--seed", "1",
            "--report-every", "2",
        ])
        try:
            # The page subscribes once the topic exists; drivers fill the table and the map.
            page.wait_for_function(
                "Number(document.getElementById('total-active').textContent) >= 100",
                timeout=90_000,
            )
            assert page.locator("#status").text_content() == "live"
            assert not page.locator("#hint").is_visible()
            rows = district_rows(page)
            total = int(page.locator("#total-active").text_content().replace(",", ""))
            assert set(rows) == {d.name for d in CITY.districts}
            assert sum(rows.values()) == int(page.locator("#foot-active").text_content())
            assert 100 <= sum(rows.values()) <= DRIVERS and abs(sum(rows.values()) - total) <= 3
            assert sum(1 for n in rows.values() if n) >= 8  # spread over the city
            page.wait_for_function(
                "Number(document.getElementById('rate').textContent.replace(/,/g, '')) >= 50"
            )

            # The map shows drivers, and they move.
            first = page.evaluate(DRIVER_PIXELS_JS)
            assert len(first["found"]) > 1000
            page.evaluate("found => { window.firstDriverPixels = new Set(found); }", first["found"])
            page.wait_for_function(f"({DRIVER_PIXELS_MOVED_JS})() > 200", polling=100)
            later = page.evaluate(DRIVER_PIXELS_JS)

            # Hover a driver: its id and where its record came from.
            scale = later["width"] / later["box"]["width"]
            pixel = later["found"][len(later["found"]) // 2]
            x = later["box"]["x"] + (pixel % later["width"]) / scale
            y = later["box"]["y"] + (pixel // later["width"]) / scale
            page.mouse.move(x, y)
            page.wait_for_function("!document.getElementById('tooltip').hidden")
            tooltip = page.locator("#tooltip").text_content()
            assert "driver-" in tooltip and "partition" in tooltip and "offset" in tooltip

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
            print(f"screenshot: {SCREENSHOT}")
        finally:
            returncode = demo.stop(signal.SIGINT, timeout_s=60)
            browser.close()
    assert errors == []
    assert returncode == 0, demo.log()
    assert "records sent" in demo.log() and "0 failed" in demo.log()
    assert SCREENSHOT.stat().st_size > 30_000


def location(driver_id: str, x: float, y: float, district: str, status: str = "available",
             partition: int = 0, offset: int = 0) -> dict:
    """A record as the live feed answers it, holding a driver's location."""
    now_ms = int(time.time() * 1000)
    value = {"driver_id": driver_id, "x_m": x, "y_m": y, "heading_deg": 90,
             "speed_kmh": 0.0 if status == "offline" else 36.0, "status": status,
             "district": district, "ts_ms": now_ms}
    return {"partition": partition, "offset": offset, "timestamp": now_ms,
            "timestamp_type": "CreateTime", "key": driver_id, "value": value, "headers": []}


def test_the_page_reads_record_frames_skips_bad_records_and_waits_for_a_missing_topic(site):
    """The feed's frames, scripted: an error for a topic not there yet, then ``records``
    frames (one with a record outside the city, which must not stop later updates), a
    ``skipped`` gap, and records of another subscription that the page must ignore."""
    subscribes: list[dict] = []
    sockets: list = []

    def feed(ws) -> None:  # stands in for /ws/v1/live; the page's socket never reaches web
        def on_message(message: str | bytes) -> None:
            request = json.loads(message)
            assert request["action"] == "subscribe"
            subscribes.append(request)
            sid = request["id"]
            if len(subscribes) == 1:
                ws.send(json.dumps({"type": "error", "subscription": sid,
                                    "message": "Topic 'driver-locations' does not exist."}))
                return
            ws.send(json.dumps({"type": "subscribed", "subscription": sid,
                                "topic": request["topic"],
                                "partitions": [{"partition": p, "offset": 0} for p in range(6)]}))
            ws.send(json.dumps({"type": "records", "subscription": sid, "records": [
                location("driver-001", 100.0, 0.0, "Harbor"),
            ]}))
            ws.send(json.dumps({"type": "records", "subscription": sid, "records": [
                # West of the city, in no district the page knows: read, not drawn or counted.
                location("driver-666", -50.0, 10.0, "Nowhere", partition=5),
                location("driver-002", 1400.0, 1450.5, "Midtown", partition=1),
                location("driver-003", 4000.0, 3000.0, "Airport", "on_trip", 2, 7),
                location("driver-004", 2200.0, 400.0, "Old Town", "offline", 3),
            ]}))
            ws.send(json.dumps({"type": "skipped", "subscription": sid, "partition": 1,
                                "from_offset": 5, "to_offset": 9}))
            ws.send(json.dumps({"type": "records", "subscription": "someone-else",
                                "records": [location("driver-999", 200.0, 200.0, "Harbor")]}))
            sockets.append((ws, sid))

        ws.on_message(on_message)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.route_web_socket(re.compile(r"/ws/v1/live"), feed)
        page.goto(f"{site.base_url}/admin/login/?next=/demo/drivers/")
        log_in(page)
        page.wait_for_url("**/demo/drivers/**")
        page.wait_for_function(
            "document.getElementById('status').textContent === 'waiting for topic'"
        )
        assert "does not exist yet" in page.locator("#hint").text_content()
        # The page tries again by itself, and then draws what the frames hold.
        page.wait_for_function("document.getElementById('total-active').textContent === '3'")
        assert page.locator("#status").text_content() == "live"
        assert not page.locator("#hint").is_visible()
        rows = district_rows(page)
        assert {name: n for name, n in rows.items() if n} == {
            "Harbor": 1, "Midtown": 1, "Airport": 1,
        }
        assert page.locator("#total-trip").text_content() == "1"
        assert page.locator("#total-available").text_content() == "2"
        assert page.locator("#offline-note").text_content() == "1 offline"
        assert page.locator("#received").text_content() == "5"
        assert page.locator("#skipped").text_content() == "5"
        page.wait_for_function(f"({DRIVER_PIXELS_JS})().found.length > 20")
        # Updates after the bad record still count.
        ws, sid = sockets[-1]
        ws.send(json.dumps({"type": "records", "subscription": sid, "records": [
            location("driver-005", 3000.0, 2000.0, "Downtown", partition=4),
        ]}))
        page.wait_for_function("document.getElementById('total-active').textContent === '4'")
        assert page.locator("#received").text_content() == "6"
        browser.close()
    assert len(subscribes) == 2
    assert subscribes[1]["topic"] == "driver-locations"
    # From a few seconds back, so the map fills at once.
    assert 5_000 <= time.time() * 1000 - subscribes[1]["from"]["timestamp"] <= 60_000
