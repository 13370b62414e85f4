"""Search for agents and programs: the MCP server (a real client over stdio and over HTTP,
real processes), `ask` with cited sentences, and one hit shape on every surface."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest
from click.testing import CliRunner

from searchctl.cli import cli
from searchctl.cmd_agents import CLIENTS

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"
KEY = "agent-key-123"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
BAD_INPUT = [
    ("nope", {}, "there is no tool 'nope'"),
    ("search", {}, "query is missing"),
    ("search", {"query": "bikes", "k": 0}, "k must be between 1 and 1000, not 0"),
    ("search", {"query": "x" * 100_000}, "the query is 100,000 characters"),
    ("search", {"query": "bikes", "k": "ten"}, "k must be a whole number"),
    ("read", {"path": "../../etc/passwd"}, "not a path inside the indexed folder"),
    ("read", {"path": "nothing-here.md"}, "not a file of this index"),
    ("read", {"path": "fire-safety-at-home.pdf", "start_line": 0}, "start_line must be 1 or more"),
    ("ask", {"question": "   "}, "the query is empty"),
]


def _searchctl() -> list[str]:
    script = Path(sys.executable).with_name("searchctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "searchctl"]


@pytest.fixture(scope="module")
def sample_index(tmp_path_factory) -> Path:
    index = tmp_path_factory.mktemp("agents") / "idx"
    done = subprocess.run(
        [*_searchctl(), "index", str(SAMPLE), "--index", str(index)], capture_output=True, text=True, env=ENV
    )
    assert done.returncode == 0, done.stderr
    return index


def _json(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


async def _session_calls(session) -> dict:
    """What every transport must answer alike: the tools, a search, a read, bad input."""
    from mcp.types import CallToolResult

    await session.initialize()
    out: dict = {"tools": {t.name: t for t in (await session.list_tools()).tools}}
    out["search"] = _json(await session.call_tool("search", {"query": "a desktop book reader for Mac", "k": 3}))
    handle = out["search"]["hits"][0]["handle"]
    out["read"] = _json(await session.call_tool("read", {"path": handle, "start_line": 1, "end_line": 3}))
    out["errors"] = []
    for name, arguments, _ in BAD_INPUT:
        result: CallToolResult = await session.call_tool(name, arguments)
        out["errors"].append((result.is_error, result.content[0].text))
    # still serving after all of that
    out["after"] = _json(await session.call_tool("search", {"query": "sourdough starter", "k": 1}))
    out["ask"] = _json(await session.call_tool("ask", {"question": "what do I do when a pan of oil catches fire"}))
    out["files"] = _json(await session.call_tool("files", {"prefix": "fire"}))
    out["status"] = _json(await session.call_tool("status", {}))
    return out


def _check_session(out: dict) -> None:
    tools = out["tools"]
    assert set(tools) == {"search", "read", "files", "status", "ask"}
    for tool in tools.values():
        assert tool.description and tool.input_schema["type"] == "object"
    assert set(tools["search"].input_schema["properties"]) >= {"query", "k", "mode", "where", "per_doc"}
    assert tools["search"].input_schema["properties"]["mode"]["enum"] == ["hybrid", "dense", "bm25"]
    first = out["search"]["hits"][0]
    assert first["relpath"] == "ebook-readers-for-mac.md" and first["handle"] == "ebook-readers-for-mac.md"
    assert out["read"]["lines"] == [1, 3] and out["read"]["text"].startswith("# Desktop e-book readers")
    assert out["read"]["total_lines"] >= 3
    for (is_error, text), (_, _, expected) in zip(out["errors"], BAD_INPUT):
        assert is_error and text.startswith("error: ") and expected in text, text
        assert "\n" not in text and "Traceback" not in text
    assert out["after"]["hits"][0]["relpath"] == "sourdough-bread.md"
    assert out["ask"]["quotes"][0]["relpath"] == "fire-safety-at-home.pdf"
    assert [f["relpath"] for f in out["files"]["files"]] == ["fire-safety-at-home.pdf"]
    assert out["status"]["documents"] == 35 and out["status"]["skipped_count"] == 0 and out["status"]["last_run"]


def test_a_real_mcp_client_over_stdio(sample_index):
    from mcp import ClientSession, StdioServerParameters, stdio_client

    command = _searchctl()
    params = StdioServerParameters(
        command=command[0], args=[*command[1:], "mcp", "--index", str(sample_index)], env=ENV
    )

    async def main() -> dict:
        with open(os.devnull, "w") as quiet:
            async with stdio_client(params, errlog=quiet) as (read, write), ClientSession(read, write) as session:
                return await _session_calls(session)

    _check_session(anyio.run(main))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def daemon(sample_index):
    """`searchctl serve` with an API key, as its own process."""
    port = _free_port()
    process = subprocess.Popen(
        [*_searchctl(), "serve", "--index", str(sample_index), "--port", str(port), "--api-key", KEY],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"searchd did not start: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(30)


def _mcp_over_http(url: str, key: str | None):
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> dict:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as client,
            streamable_http_client(url + "/mcp", http_client=client) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            return await _session_calls(session)

    return anyio.run(main)


def test_a_real_mcp_client_over_http_behind_the_token(daemon):
    _check_session(_mcp_over_http(daemon, KEY))
    with pytest.raises(BaseException):  # noqa: B017 - refused before any session starts
        _mcp_over_http(daemon, None)
    refused = httpx.post(daemon + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401 and "API key" in refused.json()["detail"]


def test_every_surface_gives_the_same_hits(daemon, sample_index):
    query = "how do I keep a houseplant alive"
    cli_hits = json.loads(
        subprocess.run(
            [*_searchctl(), "query", query, "--index", str(sample_index), "-k", "5", "--json", "--explain"],
            capture_output=True,
            text=True,
            env=ENV,
            check=True,
        ).stdout
    )["hits"]
    auth = {"Authorization": f"Bearer {KEY}"}
    http_hits = httpx.get(daemon + "/search", params={"q": query, "k": 5, "explain": "true"}, headers=auth).json()
    http_hits = http_hits["hits"]

    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> dict:
        async with (
            httpx2.AsyncClient(headers=auth, timeout=60) as client,
            streamable_http_client(daemon + "/mcp", http_client=client) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return _json(await session.call_tool("search", {"query": query, "k": 5}))

    mcp_hits = anyio.run(main)["hits"]
    assert cli_hits and len(cli_hits) == 5
    plain = [{**h, "scores": {}} for h in cli_hits]  # the MCP tool does not explain
    assert http_hits == cli_hits and mcp_hits == plain
    from searchd.schemas import HitOut

    assert set(cli_hits[0]) == set(HitOut.model_fields)  # the schema documents the one shape


def test_ask_cites_the_fire_safety_pdf(sample_index, daemon):
    runner = CliRunner()
    question = "what do I do when a pan of oil catches fire"
    result = runner.invoke(cli, ["ask", question, "--index", str(sample_index)], env={"HF_HUB_OFFLINE": "1"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("[1] fire-safety-at-home.pdf:")
    assert "cover it with a lid or a" in lines[1] and "damp cloth" in lines[1]
    as_json = json.loads(
        runner.invoke(cli, ["ask", question, "--index", str(sample_index), "--json", "-k", "3"]).output
    )
    first = as_json["quotes"][0]
    assert first["citation"] == f"[1] fire-safety-at-home.pdf:{first['lines'][0]}-{first['lines'][1]}"
    assert as_json["answer"] is None and len({q["relpath"] for q in as_json["quotes"]}) == len(as_json["quotes"])
    posted = httpx.post(daemon + "/ask", json={"q": question, "k": 3}, headers={"Authorization": f"Bearer {KEY}"})
    assert posted.status_code == 200 and posted.json()["quotes"] == as_json["quotes"]
    for body, expected in [({"q": "  "}, "empty"), ({"q": "fire", "k": 0}, "k"), ({"question": "fire"}, "q")]:
        bad = httpx.post(daemon + "/ask", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert bad.status_code == 422 and expected in bad.json()["detail"]
    blank = runner.invoke(cli, ["ask", " ", "--index", str(sample_index)])
    assert blank.exit_code == 2 and "empty" in blank.output


def test_ask_generate_writes_from_the_quotes_with_a_tiny_generator(sample_index, tmp_path):
    from test_generator import make_tiny_lm  # a random-weight causal LM built in the test

    from searchcore.answers import Answer, Quote, write_answer
    from searchcore.generator import Generator

    generator = Generator(str(make_tiny_lm(tmp_path)))
    quote = Quote(1, "Cover the pan with a lid.", "/x/fire.pdf", "fire.pdf", "fire.pdf", (3, 3), None, 7, 1.0)
    written = write_answer(Answer("what do I do?", [quote], 1, 5.0), generator, max_new_tokens=8)
    assert written.answer is not None and written.generator == generator.name and written.quotes == [quote]
    assert "[2]" not in written.answer  # a citation of no quote is taken out


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_print_config_names_this_index_with_absolute_paths(client, sample_index):
    result = CliRunner().invoke(cli, ["mcp", "--index", str(sample_index), "--print-config", client])
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    entry = config if client == "stdio" else next(iter(next(iter(config.values())).values()))
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).exists()
    assert entry["args"][-3:] == ["mcp", "--index", str(sample_index.resolve())]


def test_mcp_without_an_index_says_so_in_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["mcp", "--index", str(tmp_path / "none")])
    assert result.exit_code == 1 and result.output.startswith("error: no index at")


def test_read_gives_back_the_lines_as_indexed(tmp_path, hashing):
    """Many overlapping chunks put back together: every line where the hits say it is."""
    from conftest import write
    from indexer.build import build_index
    from searchcore import Config, Searcher
    from searchcore.errors import UsageError
    from searchcore.reading import MAX_READ_LINES, file_list, read_file

    root = tmp_path / "docs"
    paragraphs = [
        f"## Part {n}\n\nThe keeper of light {n} climbs the tower at dusk.\nShe writes the weather for ships {n}.\n"
        for n in range(150)
    ]
    text = "# Logbook\n\n" + "\n".join(paragraphs)
    write(root, "notes/log.md", text)
    write(
        root, "faq.jsonl", '{"id": "a", "text": "First answer."}\n{"id": "b", "text": "Second answer.\\nTwo lines."}\n'
    )
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, root, embedder=hashing)
    with Searcher(config, embedder=hashing) as searcher:
        records, places = searcher.records, searcher.places
        assert len(records.file_chunks(str(root / "notes" / "log.md"))) > 20
        lines = text.rstrip("\n").split("\n")  # a file's last line break ends no line of its own
        whole = read_file(records, places, "notes/log.md")
        assert whole["text"].split("\n") == lines[:MAX_READ_LINES] and whole["more"] is True
        assert whole["total_lines"] == len(lines) and whole["lines"] == [1, MAX_READ_LINES]
        rest = read_file(records, places, "notes/log.md", MAX_READ_LINES + 1)
        assert rest["text"].split("\n") == lines[MAX_READ_LINES:] and rest["more"] is False
        for hit in searcher.search("keeper of light 97 weather", k=5):
            if hit.path.endswith("log.md"):
                shown = read_file(records, places, "notes/log.md", *hit.lines)["text"]
                assert " ".join(shown.split()) == " ".join(hit.text.split())
        assert read_file(records, places, "faq.jsonl#b")["text"] == "Second answer.\nTwo lines."
        for handle, message in [
            ("faq.jsonl", "holds 2 records; read one as PATH#KEY, e.g. faq.jsonl#a"),
            ("faq.jsonl#zz", "holds no record 'zz'"),
            ("/etc/passwd", "not a path inside the indexed folder"),
            ("notes/../faq.jsonl", "not a path inside the indexed folder"),
            ("notes/other.md", "not a file of this index"),
        ]:
            with pytest.raises(UsageError, match=message.replace(".", r"\.").replace("(", r"\(")):
                read_file(records, places, handle)
        assert [f["relpath"] for f in file_list(records, places)["files"]] == ["faq.jsonl", "notes/log.md"]
        assert file_list(records, places, "faq")["files"][0]["documents"] == 2
