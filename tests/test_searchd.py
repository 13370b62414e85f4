"""searchd over HTTP: every route, every limit, auth, hot reload, a real uvicorn."""

import base64
import json
import threading
import time

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from conftest import HashingEmbedder, LiveServer, write
from indexer.build import build_index
from searchcore.config import Config
from searchctl.cli import cli
from searchd import create_app

KEY = "s3cret-key"


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "docs"
    write(root, "cats.md", "# Cats\n\nCats purr and chase mice around the barn.\n")
    write(root, "boats.txt", "Sailing boats need wind, a keel and a good sail.\n")
    write(root, "bread.txt", "Sourdough bread rises slowly with wild yeast.\n")
    write(root, "faq.jsonl", json.dumps({"_id": "q1", "title": "Refunds", "text": "Money back within thirty days."}))
    build_index(Config(index_dir=tmp_path / "idx"), root, embedder=HashingEmbedder())
    return root


@pytest.fixture
def config(corpus, tmp_path):
    return Config(index_dir=tmp_path / "idx")


@pytest.fixture
def client(config):
    with TestClient(create_app(config, embedder=HashingEmbedder())) as client:
        yield client


@pytest.fixture
def secured(config):
    with TestClient(create_app(config, api_key=KEY, embedder=HashingEmbedder())) as client:
        yield client


def test_get_search(client, corpus):
    response = client.get("/search", params={"q": "wild yeast sourdough", "k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["generation"] == 1 and body["k"] == 2 and body["took_ms"] >= 0
    first = body["hits"][0]
    assert first["path"] == str(corpus / "bread.txt") and first["rank"] == 1
    assert first["lines"] == [1, 1] and first["snippet"].startswith("Sourdough") and first["chunk_id"] > 0
    assert len(body["hits"]) == 2


def test_post_search_single_and_batch(client, corpus):
    single = client.post("/search", json={"q": "money back refunds", "k": 1, "per_doc": True}).json()
    assert single["hits"][0]["source"] == f"{corpus / 'faq.jsonl'}#q1" and single["hits"][0]["title"] == "Refunds"
    batch = client.post("/search", json={"queries": ["cats purr", "sailing wind"], "k": 1}).json()
    assert [r["query"] for r in batch["results"]] == ["cats purr", "sailing wind"]
    assert batch["results"][0]["hits"][0]["path"].endswith("cats.md")
    assert batch["results"][1]["hits"][0]["path"].endswith("boats.txt")
    assert batch["generation"] == 1


def test_chunk_route(client):
    hit = client.get("/search", params={"q": "cats purr"}).json()["hits"][0]
    chunk = client.get(f"/chunks/{hit['chunk_id']}").json()
    assert chunk["text"] == "# Cats\n\nCats purr and chase mice around the barn."
    assert chunk["lines"] == [1, 3] and chunk["chars"][0] == 0 and chunk["metadata"] == {"lang": "en"}
    missing = client.get("/chunks/99999")
    assert missing.status_code == 404 and "no chunk 99999" in missing.json()["detail"]
    assert client.get("/chunks/abc").status_code == 422
    assert client.get("/chunks/0").status_code == 422


def test_health_metrics_page_and_schema(client):
    health = client.get("/health").json()
    assert health == {
        "status": "ok",
        "model": "test/hashing",
        "documents": 4,
        "chunks": 4,
        "generation": 1,
        "index": health["index"],
    }
    client.get("/search", params={"q": "boats"})
    client.get("/search", params={"q": ""})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'searchd_requests_total{method="GET",route="/search",status="200"} 1.0' in text
    assert 'searchd_requests_total{method="GET",route="/search",status="422"} 1.0' in text
    assert 'searchd_request_duration_seconds_bucket{le="0.001",method="GET",route="/search",status="200"}' in text
    assert "searchd_index_chunks 4.0" in text and "searchd_index_generation 1.0" in text
    assert "searchd_index_bytes" in text
    page = client.get("/")
    assert page.status_code == 200 and '<input id="q"' in page.text and "/chunks/" in page.text
    info = client.get("/info").json()  # the library's figures, as `searchctl info --json` prints them
    assert (info["documents"], info["chunks"], info["generation"], info["engine"]) == (4, 4, 1, "local")
    assert info["index"] == health["index"] and info["model"] == "test/hashing" and info["total_bytes"] > 0
    schema = client.get("/openapi.json").json()
    assert {"/search", "/chunks/{chunk_id}", "/health", "/info", "/metrics", "/"} <= set(schema["paths"])
    assert "SearchRequest" in schema["components"]["schemas"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "method,kwargs,status",
    [
        ("get", {"params": {"q": ""}}, 422),
        ("get", {"params": {"q": "   \n\t"}}, 422),
        ("get", {"params": {"q": "\x85\x1c\ufeff\u3000"}}, 422),  # space to one regex dialect or another
        ("get", {"params": {}}, 422),
        ("get", {"params": {"q": "x" * 2001}}, 422),
        ("get", {"params": {"q": "x" * 2000}}, 200),
        ("get", {"params": {"q": "x", "k": 0}}, 422),
        ("get", {"params": {"q": "x", "k": -1}}, 422),
        ("get", {"params": {"q": "x", "k": 1001}}, 422),
        ("get", {"params": {"q": "x", "k": 1000}}, 200),
        ("get", {"params": {"q": "x", "k": "ten"}}, 422),
        ("get", {"params": {"q": "x", "k": "1.5"}}, 422),
        ("post", {"json": {"q": ""}}, 422),
        ("post", {"json": {"q": "  "}}, 422),
        ("post", {"json": {}}, 422),
        ("post", {"json": {"q": "a", "queries": ["b"]}}, 422),
        ("post", {"json": {"queries": []}}, 422),
        ("post", {"json": {"queries": ["ok", " "]}}, 422),
        ("post", {"json": {"queries": ["ok", "\x85"]}}, 422),
        ("post", {"json": {"q": "\ufeff"}}, 422),
        ("post", {"json": {"queries": ["q"] * 257}}, 422),
        ("post", {"json": {"queries": ["q"] * 256, "k": 1}}, 200),
        ("post", {"json": {"q": "x", "k": 0}}, 422),
        ("post", {"json": {"q": "x", "k": "many"}}, 422),
        ("post", {"json": {"q": "x", "unknown": 1}}, 422),
        ("post", {"json": {"q": 5}}, 422),
        ("post", {"json": ["q"]}, 422),
        ("post", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        ("post", {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}, 422),
        ("post", {"content": b"q=x", "headers": {"content-type": "text/plain"}}, 422),
        ("delete", {}, 405),
    ],
)
def test_limits_and_bad_input_get_a_4xx_with_a_detail(client, method, kwargs, status):
    response = getattr(client, method)("/search", **kwargs)
    assert response.status_code == status, response.text
    if status >= 400:
        assert "detail" in response.json()


def test_body_over_one_mebibyte_is_refused(client):
    big = json.dumps({"q": "x", "pad": "y" * (1 << 20)})
    response = client.post("/search", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over 1048576 bytes" in response.json()["detail"]

    def chunked():  # no Content-Length: the limit must hold while reading
        for _ in range(20):
            yield b"x" * 65536

    response = client.post("/search", content=chunked(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    response = client.post("/search", content=b"{}", headers={"content-length": "abc"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path", ["/search?q=cats", "/chunks/1", "/info", "/metrics", "/", "/docs", "/openapi.json", "/nope"]
)
def test_api_key_is_required_everywhere_but_health(secured, path):
    missing = secured.get(path)
    assert missing.status_code == 401 and "API key" in missing.json()["detail"]
    wrong = secured.get(path, headers={"Authorization": f"Bearer {KEY}x"})
    assert wrong.status_code == 401
    assert secured.get(path, headers={"Authorization": "Basic !!!"}).status_code == 401
    right = secured.get(path, headers={"Authorization": f"Bearer {KEY}"})
    assert right.status_code == (404 if path == "/nope" else 200)


def test_browser_basic_auth_and_health_without_key(secured):
    assert secured.get("/").headers["www-authenticate"] == 'Basic realm="searchd"'
    assert secured.get("/search?q=x").headers["www-authenticate"] == "Bearer"
    basic = base64.b64encode(f"anyone:{KEY}".encode()).decode()
    assert secured.get("/search?q=cats", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert secured.get("/health").status_code == 200


def test_hostile_inputs_never_give_a_5xx(client):
    nasty = ["\x00", "NEAR(", '"', "*", "-", ":", "AND OR NOT", "😀" * 500, "\ud800".encode("utf-8", "surrogatepass")]
    for value in nasty:
        q = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        assert client.get("/search", params={"q": q}).status_code < 500
        assert client.post("/search", json={"q": q}).status_code < 500
    for raw in [
        b"",
        b"null",
        b"[]",
        b'{"q": null}',
        b'{"q": ["x"]}',
        b'{"queries": "x"}',
        b'{"k": 1e309}',
        b'{"q": "x", "k": 99999999999999999999999}',
        b'{"q": "x", "per_doc": "maybe"}',
    ]:
        response = client.post("/search", content=raw, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (raw, response.status_code)
    assert client.get("/chunks/99999999999999999999999").status_code == 422
    assert client.get("/search", params={"q": "x", "k": "99999999999999999999"}).status_code == 422


# -- a real server ----------------------------------------------------------------------------


def test_real_uvicorn_and_query_server(config, corpus):
    app = create_app(config, api_key=KEY, embedder=HashingEmbedder())
    with LiveServer(app) as live, httpx.Client(base_url=live.url) as http:
        assert http.get("/health").json()["chunks"] == 4
        response = http.get("/search", params={"q": "sailing boats wind"}, headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 200 and response.json()["hits"][0]["path"].endswith("boats.txt")
        runner = CliRunner()
        result = runner.invoke(cli, ["query", "sailing boats wind", "--server", live.url, "--api-key", KEY, "-k", "2"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0].endswith("boats.txt:1-1") and result.stdout.startswith("  1. ")
        as_json = runner.invoke(cli, ["query", "cats", "--server", live.url, "--json"], env={"SEARCHD_API_KEY": KEY})
        assert json.loads(as_json.stdout)["hits"][0]["path"].endswith("cats.md")
        denied = runner.invoke(cli, ["query", "cats", "--server", live.url])
        assert denied.exit_code == 1 and "wants an API key" in denied.stderr
    gone = CliRunner().invoke(cli, ["query", "cats", "--server", live.url])
    assert gone.exit_code == 1 and "cannot reach searchd" in gone.stderr
    bad = CliRunner().invoke(cli, ["query", "cats", "--server", "ftp://x"])
    assert bad.exit_code == 2 and "--server must be an http" in bad.stderr


def test_hot_reload_under_load_has_no_errors_and_no_mixed_results(config, corpus):
    app = create_app(config, embedder=HashingEmbedder(), reload_interval=0.05)
    errors, seen = [], []
    stop = threading.Event()
    with LiveServer(app) as live:

        def hammer():
            with httpx.Client(base_url=live.url, timeout=10) as http:
                while not stop.is_set():
                    try:
                        r = http.get("/search", params={"q": "volcano lava eruption", "k": 10})
                        if r.status_code != 200:
                            errors.append(r.status_code)
                            continue
                        body = r.json()
                        paths = {h["path"].rsplit("/", 1)[-1] for h in body["hits"]}
                        seen.append((body["generation"], paths, time.monotonic()))
                    except httpx.HTTPError as exc:  # pragma: no cover - reported below
                        errors.append(repr(exc))

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        write(corpus, "volcano.txt", "Volcano eruption: lava and ash.\n")
        (corpus / "boats.txt").unlink()
        summary = build_index(config, corpus, embedder=HashingEmbedder())
        committed = time.monotonic()
        assert summary.added == 1 and summary.removed == 1
        deadline = committed + 1.0
        while time.monotonic() < deadline + 0.5 and not any(g == summary.generation for g, _, _ in seen):
            time.sleep(0.02)
        time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(10)
    assert errors == []
    new = [(paths, at) for g, paths, at in seen if g == summary.generation]
    old = [paths for g, paths, _ in seen if g == 1]
    assert old and new, "saw both generations"
    assert min(at for _, at in new) - committed <= 1.0, "new generation served within 1 s"
    # No mixed results: each response is wholly one generation.
    assert all("volcano.txt" in paths and "boats.txt" not in paths for paths, _ in new)
    assert all("volcano.txt" not in paths and "boats.txt" in paths for paths in old)


def test_modes_filters_and_explain_over_http(client, corpus):
    plain = client.get("/search", params={"q": "money back refunds", "k": 1}).json()
    assert plain["mode"] == "hybrid" and plain["hits"][0]["scores"] == {}
    explained = client.get("/search", params={"q": "money back refunds", "k": 1, "explain": "true"}).json()
    assert {"dense", "bm25", "fused"} <= set(explained["hits"][0]["scores"])
    assert "dense_feedback" in explained["hits"][0]["scores"]  # hybrid feeds back by default
    plain = client.get("/search", params={"q": "money back refunds", "k": 1, "explain": "true", "feedback": "false"})
    assert "dense_feedback" not in plain.json()["hits"][0]["scores"]
    posted = client.post("/search", json={"q": "money back refunds", "k": 1, "explain": True, "feedback": False})
    assert posted.status_code == 200 and "dense_rank" in posted.json()["hits"][0]["scores"]
    bm25 = client.get("/search", params={"q": "sourdough yeast", "mode": "bm25"}).json()
    assert [h["path"].rsplit("/", 1)[-1] for h in bm25["hits"]] == ["bread.txt"]
    only_md = client.get("/search", params={"q": "wind yeast cats", "type": "markdown"}).json()
    assert {h["path"].rsplit("/", 1)[-1] for h in only_md["hits"]} == {"cats.md"}
    where = client.post("/search", json={"q": "refunds money", "where": {"title": "nope"}})
    assert where.status_code == 404  # no record has metadata: a filter on it finds nothing, and says why
    assert where.json()["detail"].startswith("no document has a field 'title' to filter on")
    path = client.post("/search", json={"q": "anything at all", "path": "*.txt", "k": 10}).json()
    assert {h["path"].rsplit("/", 1)[-1] for h in path["hits"]} == {"boats.txt", "bread.txt"}
    assert client.get("/search", params={"q": "x", "mode": "fuzzy"}).status_code == 422
    assert client.get("/search", params={"q": "x", "where": "novalue"}).status_code == 422
    assert client.post("/search", json={"q": "x", "fusion": "max"}).status_code == 422


# -- pages, passages, files, plain errors -------------------------------------------------------


@pytest.fixture
def shelf(tmp_path):
    """Two folders of notes, a long document with many matching chunks, an HTML page and a
    file outside the indexed folder."""
    root = tmp_path / "shelf"
    for i in range(14):
        folder = "notes" if i % 2 else "papers"
        write(
            root,
            f"{folder}/harbour-{i:02d}.md",
            f"# Harbour {i}\n\nThe harbour light number {i} guides boats at night.\n",
        )
    sections = "".join(f"\n## Part {n}\n\nHarbour lights and boats at night, part {n}.\n" for n in range(8))
    write(root, "papers/long.md", "# The long harbour book\n" + sections)
    write(
        root,
        "page.html",
        "<html><head><title>Harbour page</title><script>alert(1)</script></head>"
        "<body><p>Harbour boats at night.</p></body></html>",
    )
    write(tmp_path, "secret.txt", "a secret outside the indexed folder\n")
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, root, embedder=HashingEmbedder())
    return root, config


@pytest.fixture
def shelf_client(shelf):
    with TestClient(create_app(shelf[1], embedder=HashingEmbedder())) as client:
        yield client


@pytest.mark.parametrize("per_doc,fusion", [(False, "weighted"), (True, "weighted"), (True, "rrf")])
def test_pages_follow_one_another_exactly(shelf_client, per_doc, fusion):
    params = {"q": "harbour light boats at night", "per_doc": per_doc, "fusion": fusion}
    whole = shelf_client.get("/search", params={**params, "k": 15}).json()
    pages = [shelf_client.get("/search", params={**params, "k": 5, "offset": o}).json() for o in (0, 5, 10)]
    assert [h["chunk_id"] for p in pages for h in p["hits"]] == [h["chunk_id"] for h in whole["hits"]]
    assert [h["rank"] for p in pages for h in p["hits"]] == list(range(1, 16))
    assert [p["offset"] for p in pages] == [0, 5, 10] and all(p["more"] for p in pages)
    last = shelf_client.get("/search", params={**params, "k": 5, "offset": 1000}).json()
    assert last["hits"] == [] and last["more"] is False
    total = whole_count = len(shelf_client.get("/search", params={**params, "k": 1000}).json()["hits"])
    end = shelf_client.get("/search", params={**params, "k": 5, "offset": total - 5}).json()
    assert len(end["hits"]) == 5 and end["more"] is False and whole_count == (16 if per_doc else 24)
    assert shelf_client.get("/search", params={**params, "offset": -1}).status_code == 422
    assert shelf_client.get("/search", params={**params, "offset": 10_001}).status_code == 422


def test_one_entry_per_document_with_its_best_passages(shelf_client, shelf):
    root, _ = shelf
    body = shelf_client.get(
        "/search", params={"q": "harbour lights boats night part", "per_doc": "true", "k": 20}
    ).json()
    paths = [h["path"] for h in body["hits"]]
    assert len(paths) == len(set(paths)) == 16
    long = next(h for h in body["hits"] if h["relpath"] == "papers/long.md")
    assert long["kind"] == "markdown" and long["path"] == str(root / "papers" / "long.md")
    page = next(h for h in body["hits"] if h["relpath"] == "page.html")
    assert page["title"] == "Harbour page" and page["kind"] == "html" and page["url"] == "/files/page.html"
    assert len(long["passages"]) == 2 and long["url"] == "/files/papers/long.md"
    chunks = shelf_client.get("/search", params={"q": "harbour lights boats night part", "k": 200}).json()["hits"]
    of_long = [h["chunk_id"] for h in chunks if h["relpath"] == "papers/long.md"]
    assert [long["chunk_id"], *(p["chunk_id"] for p in long["passages"])] == of_long[:3]
    for passage in long["passages"]:
        assert set(passage) == {"chunk_id", "score", "lines", "snippet", "highlights"} and passage["snippet"]
    assert body["kinds"] == {"markdown": 15, "html": 1}
    assert body["folders"] == {"papers": 8, "notes": 7, ".": 1}
    chunk_list = shelf_client.get("/search", params={"q": "harbour", "k": 3}).json()["hits"]
    assert all(h["passages"] == [] for h in chunk_list)
    assert shelf_client.get("/search", params={"q": "harbour", "path": "notes/", "k": 50}).json()["folders"] == {
        "notes": 7
    }


def test_files_are_served_only_when_indexed(shelf_client, shelf, tmp_path):
    root, _ = shelf
    text = shelf_client.get("/files/papers/long.md")
    assert text.status_code == 200 and text.text.startswith("# The long harbour book")
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["x-content-type-options"] == "nosniff"
    assert text.headers["content-security-policy"] == "sandbox"
    assert text.headers["content-disposition"].startswith("inline")
    page = shelf_client.get("/files/page.html")
    assert page.headers["content-type"].startswith("text/html") and page.headers["content-security-policy"] == "sandbox"
    (root / "notes" / "link.md").symlink_to(tmp_path / "secret.txt")  # after indexing: not in the index
    (root / "notes" / "new.md").write_text("# New\n\nnot indexed yet\n")
    outside, unindexed = "is not a path inside the indexed folder", "is not a file of this index"
    refused = {
        "/files/../secret.txt": "Not Found",  # the client resolves the dots: /secret.txt is no route
        "/files/notes/%2E%2E/%2E%2E/secret.txt": outside,
        "/files/notes%2F..%2F..%2Fsecret.txt": outside,
        "/files//etc/passwd": outside,
        "/files/notes//harbour-01.md": outside,
        "/files/%2E/page.html": outside,
        "/files/nope%00.md": outside,
        "/files/%0A": outside,  # the router cuts a path at a newline: nothing is left
        "/files/notes/link.md": unindexed,
        "/files/notes/new.md": unindexed,
        "/files/secret.txt": unindexed,
        "/files/idx/index.db": unindexed,
        "/files/notes": unindexed,
    }
    for url, reason in refused.items():
        response = shelf_client.get(url)
        assert response.status_code == 404 and reason in response.json()["detail"], (url, response.text)
        assert "a secret" not in response.text
    (root / "notes" / "harbour-01.md").unlink()
    gone = shelf_client.get("/files/notes/harbour-01.md")
    assert gone.status_code == 404 and "no longer on disk" in gone.json()["detail"]


def test_files_ask_a_browser_for_the_key(config):
    with TestClient(create_app(config, api_key=KEY, embedder=HashingEmbedder())) as secured:
        missing = secured.get("/files/cats.md")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == 'Basic realm="searchd"'
        basic = base64.b64encode(f"me:{KEY}".encode()).decode()
        opened = secured.get("/files/cats.md", headers={"Authorization": f"Basic {basic}"})
        assert opened.status_code == 200 and opened.text.startswith("# Cats")


@pytest.mark.parametrize(
    "method,kwargs,expected",
    [
        ("get", {"params": {"q": " "}}, "the query is empty; give some words to search for"),
        ("get", {"params": {}}, "q is missing; give the words to search for as q"),
        ("get", {"params": {"q": "x", "k": "ten"}}, "k must be a whole number, not 'ten'"),
        ("get", {"params": {"q": "x", "k": "0"}}, "k must be at least 1, not 0"),
        ("get", {"params": {"q": "x", "mode": "fast"}}, "mode must be 'dense', 'bm25' or 'hybrid', not 'fast'"),
        ("get", {"params": {"q": "x", "label": "="}}, "a label filter takes LABEL or FACET=LABEL, not '='"),
        ("get", {"params": {"q": "x", "where": "nope"}}, "where takes FIELD=VALUE, not 'nope'"),
        ("get", {"params": {"q": "x", "per_doc": "maybe"}}, "per_doc must be true or false, not 'maybe'"),
        ("get", {"params": {"q": "x", "per-doc": "true"}}, "unknown parameter 'per-doc'; the parameters are q, k,"),
        ("post", {"json": {"q": "x", "per-doc": True}}, "unknown field 'per-doc'; the fields are q, queries, k,"),
        (
            "post",
            {"content": b'{"q": "x",', "headers": {"content-type": "application/json"}},
            "the body is not valid JSON",
        ),
        ("post", {"json": ["q"]}, 'the body must be a JSON object such as {"q": "some words"}'),
        ("post", {"json": {"q": "x", "where": {"": "v"}}}, "where: a field name must not be empty"),
        ("post", {"content": b'{"q": "x", "k": 1e309}', "headers": {"content-type": "application/json"}}, "k must be"),
        ("post", {"json": {"q": "x" * 2001}}, "q takes at most 2000 characters"),
    ],
)
def test_errors_are_plain_language(client, method, kwargs, expected):
    response = getattr(client, method)("/search", **kwargs)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(expected), detail
    for jargon in ("[^", "\\s", "pattern", "line 1 column", "decode error", "Input should", "Field required"):
        assert jargon not in detail, detail


def test_get_and_post_agree_on_every_parameter(client):
    from searchcore.options import PARAMS

    for param in PARAMS:  # each option is known to both, and an unknown one refused by both
        assert client.get("/search", params={"q": "x", param.name: "zzz-not-valid" * 100}).status_code == 422
    assert client.get("/search", params={"q": "x", "kk": "1"}).status_code == 422
    assert client.post("/search", json={"q": "x", "kk": 1}).status_code == 422
