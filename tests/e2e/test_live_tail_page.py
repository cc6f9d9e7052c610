"""The live tail page in a real headless Chromium: log in, pick a topic, watch records arrive.

Records come in batched ``records`` frames; the page shows each record of each frame, and when
the topic is deleted while tailed, it says so and stops.

Skipped without Debian's Chromium or playwright (tests/e2e/browser.py).
"""

import httpx
import pytest

from tests.e2e.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    create_operator,
    log_in,
    sync_playwright_or_skip,
)
from tests.integration.cluster import running_cluster
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.slow

SCREENSHOT = SCREENSHOTS / "live_tail.png"

sync_playwright = sync_playwright_or_skip()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("live-page"), broker_count=1) as cluster:
        cluster.start_web()
        cluster.token = cluster.manage("issue_api_key", "acme", "--create").strip()
        create_operator(cluster)
        yield cluster


def test_operator_watches_records_arrive_on_the_live_tail_page(site):
    from confluent_kafka import Producer

    rest = httpx.Client(
        base_url=f"{site.base_url}/api/v1",
        headers={"Authorization": f"Bearer {site.token}"}, timeout=30,
    )
    assert rest.post("/topics", json={"name": "payments", "partition_count": 2}).status_code == 201
    wait_for(lambda: rest.get("/topics/payments/partitions").status_code == 200, 30, "offsets")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{site.base_url}/live/")
        # Not logged in: the admin login, then back to the page.
        log_in(page)
        page.wait_for_url("**/live/**")
        assert page.locator("header a", has_text="Live tail").count() == 1
        page.select_option("#tenant", "acme")
        page.wait_for_load_state()
        page.select_option("#topic", "payments")
        page.click("#start")
        page.wait_for_function("document.getElementById('status').textContent === 'live'")

        username, password = site.token.split(".", 1)
        producer = Producer({
            "bootstrap.servers": site.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN", "sasl.username": username, "sasl.password": password,
        })
        for i in range(60):
            producer.produce(
                "payments", key=f"customer-{i % 6}".encode(),
                value=b'{"amount": %d, "currency": "EUR", "id": "pay-%04d"}' % (i * 7, i),
                headers=[("source", b"checkout")],
            )
        assert producer.flush(30) == 0

        page.wait_for_function(
            "document.querySelectorAll('#records tbody tr').length >= 60", timeout=20_000
        )
        page.wait_for_function("document.getElementById('total').textContent === '60'")
        # The text filter narrows what is shown, client side.
        page.fill("#text-filter", "customer-3")
        page.wait_for_function("document.getElementById('shown').textContent === '10'")
        page.fill("#text-filter", "")
        page.locator("#records tbody tr").first.click()
        assert "amount" in page.locator("#detail").text_content()

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        print(f"screenshot: {SCREENSHOT}")

        # Pause, produce more, resume: the page picks up where it stopped, missing nothing.
        page.click("#pause")
        page.wait_for_function("document.getElementById('status').textContent === 'paused'")
        for i in range(60, 70):
            producer.produce("payments", key=b"late", value=b'{"n": %d}' % i)
        assert producer.flush(30) == 0
        page.click("#pause")
        page.wait_for_function(
            "document.querySelectorAll('#records tbody tr').length >= 70", timeout=20_000
        )
        page.wait_for_function("document.getElementById('total').textContent === '70'")
        offsets = page.eval_on_selector_all(
            "#records tbody tr:not(.notice)",
            "rows => rows.map(r => r.record.partition + ':' + r.record.offset)",
        )
        assert len(offsets) == len(set(offsets)) == 70  # each record once, none lost

        # The topic is deleted while the page tails it: the page says so and stops.
        assert rest.delete("/topics/payments").status_code == 204
        page.wait_for_function(
            "document.getElementById('error').textContent === \"Topic 'payments' was deleted.\"",
            timeout=20_000,
        )
        page.wait_for_function("document.getElementById('status').textContent === 'stopped'")
        assert page.locator("#pause").is_disabled()
        browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
