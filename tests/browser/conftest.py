"""The dashboard in a real browser: Debian's Chromium (never a browser Playwright downloads),
driven by Playwright's sync API, against a real `ktrdr up` (SQLite, the in-process bus, one
trainer) behind a TCP relay the tests can cut.

Without Chromium or Playwright these tests skip on a laptop and FAIL under CI=true (./dev test
installs Chromium). Screenshots land in var/test-artifacts/ (gitignored)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.browser.proxy import CuttableProxy
from tests.e2e.harness import FIXTURES, REPO, Process, base_env, free_port, wait_ready
from tests.support.auth import TEST_KEY

T = TypeVar("T")
ARTIFACTS = REPO / "var" / "test-artifacts"
# Known to work headless in a container, and to keep Chromium off the network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to its end from a sync test: in a thread of its own, since Playwright's
    sync API keeps an event loop running in the test's thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(message: str) -> None:
    if _in_ci():
        pytest.fail(f"{message} (CI=true: the browser tests must run, not skip)")
    pytest.skip(message)


def chromium_path() -> str | None:
    given = os.environ.get("KTRDR_TEST_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped, not session-scoped: Playwright's sync API keeps an event loop running in
    the test thread while it is started, and the async tests of later modules need it gone."""
    path = chromium_path()
    if path is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Service:
    """`ktrdr up` and the relay in front of it: the browser talks to `url` (through the relay),
    the tests' own HTTP calls to `direct_url`."""

    url: str
    direct_url: str
    proxy: CuttableProxy
    process: Process
    key: str = TEST_KEY


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    work = tmp_path_factory.mktemp("dashboard")
    (work / "strategies").mkdir()
    shutil.copy(FIXTURES / "e2e_tiny.yaml", work / "strategies" / "e2e_tiny.yaml")
    (work / "data").symlink_to(REPO / "data")
    port = free_port()
    env = base_env(KTRDR_BATCH_PROGRESS_INTERVAL_S="0.1", KTRDR_TORCH_THREADS="1")
    process = Process("up", ["up", "--port", str(port)], env=env, cwd=work, logs=work)
    proxy = CuttableProxy(port)
    try:
        run_async(wait_ready(f"http://127.0.0.1:{port}", [process]))
        yield Service(proxy.url, f"http://127.0.0.1:{port}", proxy, process)
    finally:
        proxy.close()
        process.stop()


@pytest.fixture
def page(browser: Any, service: Service) -> Iterator[Any]:
    """A fresh browser context (its own session storage) on a laptop-sized screen. Uncaught
    errors in the page fail the test."""
    context = browser.new_context(viewport=LAPTOP, base_url=service.url)
    context.set_default_timeout(60_000)
    errors: list[str] = []
    opened = context.new_page()
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"errors in the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
