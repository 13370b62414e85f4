"""The search page in a real headless Chromium, against a real searchd and the real model."""

import os
import shutil
import tempfile

import pytest
from test_cli import SEED

from conftest import LiveServer, write
from indexer.build import build_index
from searchcore.config import Config
from searchd import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Chromium is not installed here (apt-get install chromium chromium-driver); .ci/run installs it",
)


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="searchd-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_type_a_query_see_the_first_result_open_the_chunk(browser, tmp_path, real_embedder):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    for name, text in SEED.items():
        write(tmp_path / "docs", name, text + "\n")
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, tmp_path / "docs", embedder=real_embedder)
    with LiveServer(create_app(config, embedder=real_embedder)) as live:
        browser.get(live.url + "/")
        box = browser.find_element(By.ID, "q")
        box.send_keys("desktop book reader for Mac", Keys.ENTER)
        wait = WebDriverWait(browser, 20)
        first = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results li.hit")))
        assert first.find_element(By.CSS_SELECTOR, ".where").text.endswith("book-reader.txt:1-1")
        score = first.find_element(By.CSS_SELECTOR, ".score").text
        assert len(score) == 6 and float(score) > 0.7, score
        marked = [m.text.lower() for m in first.find_elements(By.TAG_NAME, "mark")]
        assert {"desktop", "book", "reader", "mac"} <= set(marked)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#results li.hit")) == 5
        first.click()
        panel = wait.until(ec.visibility_of_element_located((By.ID, "chunk")))
        assert "Stanza on the iPhone" in panel.text
        assert browser.find_element(By.ID, "chunk-head").text.endswith("book-reader.txt:1-1")
        assert "q=desktop" in browser.current_url
        if os.environ.get("SEARCHD_SCREENSHOT"):
            browser.save_screenshot(os.environ["SEARCHD_SCREENSHOT"])
