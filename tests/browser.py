"""Debian's Chromium for the browser tests, driven by Playwright (never a downloaded browser):
where it is, how it starts, and the marks every browser test module carries. The ``browser``
fixture (one Chromium per module) is in conftest.py."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKS = [pytest.mark.browser,
         pytest.mark.skipif(not os.path.exists(CHROMIUM),
                            reason="Debian chromium is not installed (apt-get install chromium)")]
