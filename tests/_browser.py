"""Finding a headless Chromium for the browser tests (the interactive page, the documentation site)."""

import os
import shutil

import pytest


def chromium() -> str | None:
    """The path of a Chromium-like browser on the PATH, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


# CI sets REFCFG_REQUIRE_BROWSER=1 after installing Chromium: there a missing browser fails the
# browser tests instead of skipping them
REQUIRED = os.environ.get("REFCFG_REQUIRE_BROWSER") == "1"
NEEDS_BROWSER = pytest.mark.skipif(
    chromium() is None and not REQUIRED, reason="no headless Chromium installed"
)
