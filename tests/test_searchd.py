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
    assert chunk["lines"] == [1, 3] and chunk["chars"][0] == 0 and chunk["metadata"] == {}
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
    schema = client.get("/openapi.json").json()
    assert {"/search", "/chunks/{chunk_id}", "/health", "/metrics", "/"} <= set(schema["paths"])
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


@pytest.mark.parametrize("path", ["/search?q=cats", "/chunks/1", "/metrics", "/", "/docs", "/openapi.json", "/nope"])
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
    where = client.post("/search", json={"q": "refunds money", "where": {"title": "nope"}}).json()
    assert where["hits"] == []
    path = client.post("/search", json={"q": "anything at all", "path": "*.txt", "k": 10}).json()
    assert {h["path"].rsplit("/", 1)[-1] for h in path["hits"]} == {"boats.txt", "bread.txt"}
    assert client.get("/search", params={"q": "x", "mode": "fuzzy"}).status_code == 422
    assert client.get("/search", params={"q": "x", "where": "novalue"}).status_code == 422
    assert client.post("/search", json={"q": "x", "fusion": "max"}).status_code == 422
