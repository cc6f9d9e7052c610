"""What the browser tests share: Debian's Chromium driven by playwright, and an operator login.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``) and the PyPI
package ``playwright`` (driving that Chromium; no browser download).
"""

from pathlib import Path
from typing import Any

import pytest

from tests.integration.cluster import ROOT, Cluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = ROOT / "var" / "screenshots"
OPERATOR, OPERATOR_PASSWORD = "operator", "op-password-1"


def sync_playwright_or_skip() -> Any:
    """playwright's ``sync_playwright``; skips the calling test module without a browser."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)",
                    allow_module_level=True)
    return pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    ).sync_playwright


def create_operator(cluster: Cluster) -> None:
    """A superuser (an operator, staff without a tenant) to log in to the pages with."""
    cluster.manage(
        "shell", "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_superuser('{OPERATOR}', 'op@example.com', '{OPERATOR_PASSWORD}')",
    )


def log_in(page: Any) -> None:
    """Fill in the admin login the page redirected to, as the operator."""
    page.fill("#id_username", OPERATOR)
    page.fill("#id_password", OPERATOR_PASSWORD)
    page.click("input[type=submit]")
