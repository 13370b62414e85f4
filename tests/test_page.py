"""The search page in a real headless Chromium, against a real searchd and the real model."""

import os
import shutil
import tempfile

import httpx
import pytest

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


PLACES = ["harbour", "cliff", "island", "cape", "reef", "bay"]


def shelf(root):
    """Notes in two folders, a guide with many sections and an HTML page with a title."""
    for i in range(24):
        folder = "notes" if i % 2 else "letters"
        place = PLACES[i % len(PLACES)]
        write(
            root,
            f"{folder}/{place}-{i:02d}.md",
            f"# {place.title()} light {i}\n\nThe keeper of the {place} lighthouse climbs the tower at dusk "
            f"to write up the weather for passing ships (note {i}).\n",
        )
    sections = "".join(
        f"\n## Watch {n}\n\nAt night the lighthouse keeper lights the lamp and trims the wick, watch {n}.\n"
        for n in range(8)
    )
    write(root, "notes/keepers-guide.md", "# The keeper's guide\n" + sections)
    write(
        root,
        "handbook.html",
        "<html><head><title>Lighthouse keepers' handbook</title></head><body><h1>Handbook</h1>"
        "<p>How a lighthouse keeper lights the lamp at night and keeps the light burning.</p></body></html>",
    )
    write(root, "recipes.txt", "Sourdough bread needs flour, water, salt and a lively starter.\n")
    write(
        root,
        "notes/leuchtturm.md",
        "# Der alte Leuchtturm\n\nDer Wärter des Leuchtturms steigt jeden Abend die Treppe hinauf und zündet "
        "die Lampe an, damit die Schiffe den Hafen sicher erreichen.\n",
    )
    from PIL import Image, ImageDraw, ImageFont

    sign = Image.new("RGB", (900, 200), "white")
    face = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
    font = ImageFont.truetype(face, 40) if os.path.exists(face) else ImageFont.load_default(40)
    ImageDraw.Draw(sign).text((30, 70), "Lighthouse visiting hours", fill="black", font=font)
    sign.save(root / "sign.png")


def test_the_search_page_people_work_in(browser, tmp_path, real_embedder):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    root = tmp_path / "shelf"
    shelf(root)
    write(tmp_path, "secret.txt", "a secret outside the indexed folder\n")
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, root, embedder=real_embedder)
    (root / "notes" / "link.md").symlink_to(tmp_path / "secret.txt")  # made after indexing
    query = "lighthouse keeper lights the lamp at night"
    wait = WebDriverWait(browser, 30)

    def entries():
        return browser.find_elements(By.CSS_SELECTOR, "#results li.hit")

    def wheres():
        return [e.find_element(By.CSS_SELECTOR, ".where").text for e in entries()]

    def reload_after(action):
        """Do ``action``, wait for the old results to go and the new ones to come."""
        old = entries()[0]
        action()
        wait.until(ec.staleness_of(old))
        wait.until(lambda _: entries() or browser.find_element(By.ID, "empty").is_displayed())

    with LiveServer(create_app(config, embedder=real_embedder)) as live:
        browser.set_window_size(1280, 1000)
        browser.get(live.url + "/")
        browser.find_element(By.ID, "q").send_keys(query, Keys.ENTER)
        wait.until(lambda _: len(entries()) == 10)

        # One entry per document, paths relative to the indexed folder, titles, the best passages.
        first_page = wheres()
        assert len(set(first_page)) == 10 and not any(w.startswith("/") for w in first_page)
        assert all(w.endswith(".md") or w.endswith(".html") for w in first_page)
        api = httpx.get(live.url + "/search", params={"q": query, "per_doc": "true", "k": 20}).json()
        assert first_page == [h["relpath"] for h in api["hits"][:10]]
        titles = [e.find_element(By.CSS_SELECTOR, ".title").text for e in entries()]
        assert "Lighthouse keepers' handbook" in titles
        guide = entries()[first_page.index("notes/keepers-guide.md")]
        assert len(guide.find_elements(By.CSS_SELECTOR, ".passage.more")) == 2
        marks = {m.text.lower() for m in entries()[0].find_elements(By.TAG_NAME, "mark")}
        assert {"lighthouse", "keeper"} <= marks, marks
        assert "mode=" not in browser.current_url and "q=lighthouse" in browser.current_url

        # A click on a passage shows the whole chunk.
        guide.find_element(By.CSS_SELECTOR, ".passage.more").click()
        chunk = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "li.hit .chunk")))
        assert "trims the wick" in chunk.text

        # More results: the next page continues the list exactly.
        browser.find_element(By.ID, "more").click()
        wait.until(lambda _: len(entries()) == 20)
        both_pages = wheres()
        assert both_pages == [h["relpath"] for h in api["hits"]] and len(set(both_pages)) == 20
        ranks = [e.find_element(By.CSS_SELECTOR, ".rank").text for e in entries()]
        assert ranks == [f"{n}." for n in range(1, 21)]
        assert browser.find_element(By.ID, "status").text.startswith("Showing documents 1–20")

        # Controls: mode, per page, one entry per document; each is in the address bar.
        reload_after(lambda: Select(browser.find_element(By.ID, "mode")).select_by_value("bm25"))
        assert "mode=bm25" in browser.current_url
        bm25 = httpx.get(live.url + "/search", params={"q": query, "per_doc": "true", "mode": "bm25"}).json()
        assert wheres() == [h["relpath"] for h in bm25["hits"]]
        assert entries()[0].find_element(By.CSS_SELECTOR, ".score").get_attribute("title") == "BM25 score"
        reload_after(lambda: Select(browser.find_element(By.ID, "k")).select_by_visible_text("20"))
        assert "k=20" in browser.current_url and len(entries()) == 20
        reload_after(lambda: browser.find_element(By.ID, "per_doc").click())
        assert "per_doc=false" in browser.current_url
        assert wheres().count("notes/keepers-guide.md") > 1  # passages, so one document can come back
        reload_after(lambda: browser.find_element(By.ID, "per_doc").click())
        reload_after(lambda: Select(browser.find_element(By.ID, "mode")).select_by_value("hybrid"))

        # Facets: a folder, then a kind; each becomes a filter chip that can be removed.
        folder = next(b for b in browser.find_elements(By.CSS_SELECTOR, "aside button") if b.text.startswith("letters"))
        reload_after(folder.click)
        assert "path=letters%2F" in browser.current_url and all(w.startswith("letters/") for w in wheres())
        chip = browser.find_element(By.CSS_SELECTOR, "#chips .chip")
        assert chip.text.startswith("in letters/")
        reload_after(chip.find_element(By.TAG_NAME, "button").click)
        assert "path=" not in browser.current_url and any(w.startswith("notes/") for w in wheres())
        html = next(b for b in browser.find_elements(By.CSS_SELECTOR, "aside button") if b.text.startswith("html"))
        reload_after(html.click)
        assert wheres() == ["handbook.html"] and "type=html" in browser.current_url
        assert browser.find_element(By.ID, "more").is_displayed() is False
        if os.environ.get("SEARCHD_SCREENSHOT"):
            browser.back()  # the address bar holds every step: back to the two-folder list
            wait.until(lambda _: len(entries()) == 20 and "type=html" not in browser.current_url)
            browser.save_screenshot(os.environ["SEARCHD_SCREENSHOT"])
            browser.forward()
            wait.until(lambda _: wheres() == ["handbook.html"])

        # An image: found by the text in it, shown with a thumbnail the daemon draws.
        browser.get(live.url + "/?q=lighthouse+visiting+hours")
        wait.until(lambda _: entries() and wheres()[0] == "sign.png")
        thumb = entries()[0].find_element(By.CSS_SELECTOR, "img.thumb")
        assert thumb.get_attribute("src") == live.url + "/thumbnails/sign.png"
        wait.until(lambda _: browser.execute_script("return arguments[0].naturalWidth", thumb) == 320)
        browser.get(live.url + "/?q=lighthouse+keeper&type=html")
        wait.until(lambda _: wheres() == ["handbook.html"])

        # Opening the file: the title links to it, served by the daemon because it is indexed.
        link = entries()[0].find_element(By.CSS_SELECTOR, "a.title")
        assert link.get_attribute("href") == live.url + "/files/handbook.html"
        assert link.get_attribute("target") == "_blank"
        browser.get(link.get_attribute("href"))
        assert "How a lighthouse keeper lights the lamp" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(live.url + "/files/notes/keepers-guide.md")
        assert browser.find_element(By.TAG_NAME, "body").text.startswith("# The keeper's guide")

        # Nothing outside the index: a path leaving the folder, a symlink made later, a file never indexed.
        for url, words in [
            ("/files/notes/%2E%2E/%2E%2E/secret.txt", "Not Found"),  # the browser resolves the dots itself
            ("/files/notes/link.md", "is not a file of this index"),
            ("/files/..%2Fsecret.txt", "is not a path inside the indexed folder"),
        ]:
            browser.get(live.url + url)
            body = browser.find_element(By.TAG_NAME, "body").text
            assert words in body and "a secret" not in body, (url, body)

        # Languages: a facet once the hits are in more than one; a click keeps one (where=lang=de).
        browser.get(live.url + "/?q=Leuchtt%C3%BCrme+Lampe&k=20")
        wait.until(lambda _: len(entries()) == 20)
        german = next(b for b in browser.find_elements(By.CSS_SELECTOR, "aside button") if b.text.startswith("de"))
        reload_after(german.click)
        assert "where=lang%3Dde" in browser.current_url and wheres() == ["notes/leuchtturm.md"]
        assert browser.find_element(By.CSS_SELECTOR, "#chips .chip").text.startswith("lang: de")
        marks = {m.text for m in entries()[0].find_elements(By.TAG_NAME, "mark")}
        assert {"Leuchtturms", "Lampe"} <= marks, marks  # the German stems, not only the typed forms

        # An error is said in plain words on the page.
        browser.get(live.url + "/?q=lighthouse")
        wait.until(lambda _: len(entries()) == 10)
        path_box = browser.find_element(By.ID, "path")
        path_box.send_keys("x" * 1001, Keys.ENTER)
        status = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#status.error")))
        assert status.text == "Error: path takes at most 1000 characters"


def test_ask_on_the_page_quotes_and_cites(browser, tmp_path, real_embedder):
    from pathlib import Path

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    sample = Path(__file__).resolve().parent.parent / "data" / "sample"
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, sample, embedder=real_embedder)
    with LiveServer(create_app(config, embedder=real_embedder)) as live:
        browser.get(live.url + "/")
        browser.find_element(By.ID, "q").send_keys("what do I do when a pan of oil catches fire")
        browser.find_element(By.ID, "ask").click()
        wait = WebDriverWait(browser, 30)
        wait.until(lambda _: browser.find_elements(By.CSS_SELECTOR, "#quotes li.quote"))
        first = browser.find_elements(By.CSS_SELECTOR, "#quotes li.quote")[0]
        assert "cover it with a lid" in first.find_element(By.TAG_NAME, "blockquote").text
        cite = first.find_element(By.CSS_SELECTOR, "a.cite")
        assert cite.text.startswith("[1] fire-safety-at-home.pdf:")
        assert cite.get_attribute("href") == live.url + "/files/fire-safety-at-home.pdf"
        assert browser.find_element(By.ID, "status").text.endswith(" ms")
