"""Shared fixtures: an isolated environment (no writes to the home directory) and small datasets."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data.idx import write_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
HAS_FASHION = (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file()
needs_fashion = pytest.mark.skipif(
    not HAS_FASHION, reason="Debian's dataset-fashion-mnist is not installed"
)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@contextlib.contextmanager
def headless_chromium(folder: Path, size: tuple[int, int], env: dict, extra=(), capabilities=None):
    """Debian's Chromium, headless, driven by its chromedriver (selenium), with a profile and a
    driver log in `folder`; browser and driver quit on exit. Skips when selenium is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={folder / 'profile'}",
        *extra,
    ):
        options.add_argument(flag)
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    service = Service(CHROMEDRIVER, log_output=str(folder / "chromedriver.log"), env=env)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """Point every cache and config location into a temporary folder; never touch the network."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("MPLCONFIGDIR", str(home / ".mpl"))
    monkeypatch.delenv("MNISTLAB_DATA", raising=False)
    monkeypatch.delenv("MNISTLAB_OFFLINE", raising=False)
    monkeypatch.delenv("MNISTLAB_SYSTEM_DATA", raising=False)
    return home


def make_images(n: int, side: int = 8, n_classes: int = 3, seed: int = 0):
    """Random uint8 images whose class is readable from their mean brightness."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    images = rng.integers(0, 60, size=(n, side, side), dtype=np.uint8)
    images += (labels * 60).astype(np.uint8)[:, None, None]
    return images, labels.astype(np.uint8)


def write_idx_folder(folder: Path, n_train=30, n_test=12, side=8, n_classes=3, gz=True):
    """Four IDX files in `folder`; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = make_images(n_train, side, n_classes, seed=1)
    x_test, y_test = make_images(n_test, side, n_classes, seed=2)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", x_train)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", y_train)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", x_test)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", y_test)
    return x_train, y_train, x_test, y_test


@pytest.fixture
def idx_folder(tmp_path):
    folder = tmp_path / "idx"
    arrays = write_idx_folder(folder)
    return folder, arrays
