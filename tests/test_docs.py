"""Every command and option has help text and is documented in the README."""

from pathlib import Path

import click
import pytest

from searchctl.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    """Every command by its full name ("index", "finetune classifier"), groups included."""
    out = {}
    for name, command in group.commands.items():
        out[prefix + name] = command
        if isinstance(command, click.Group):
            out.update(_commands(command, prefix + name + " "))
    return out


COMMANDS = _commands(cli)
LEAVES = sorted(name for name, command in COMMANDS.items() if not isinstance(command, click.Group))


def test_the_readme_quick_start_is_the_two_make_commands():
    assert "make demo" in README and "make test" in README


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help(name):
    command = COMMANDS[name]
    assert command.help and command.help.strip(), f"{name} has no help text"


@pytest.mark.parametrize("name", LEAVES)
def test_command_has_a_readme_section(name):
    assert f"### `searchctl {name}" in README, f"README has no section for searchctl {name}"


@pytest.mark.parametrize(
    "name,option",
    [
        (name, opt)
        for name in LEAVES
        for param in COMMANDS[name].params
        if isinstance(param, click.Option)
        for opt in param.opts
    ],
)
def test_every_option_is_documented(name, option):
    param = next(p for p in COMMANDS[name].params if option in getattr(p, "opts", []))
    assert param.help, f"{name} {option} has no help text"
    section = README.split(f"### `searchctl {name}", 1)[1].split("\n### ", 1)[0]
    assert f"`{option}" in section, f"README section for searchctl {name} does not mention {option}"


def test_every_http_route_and_search_parameter_is_documented():
    from searchcore.config import Config
    from searchcore.options import PARAMS
    from searchd import create_app

    app = create_app(Config(index_dir=Path("unused")))
    paths = app.openapi()["paths"]
    routes = set(paths)
    assert routes == {
        "/search",
        "/ask",
        "/chunks/{chunk_id}",
        "/files/{path}",
        "/thumbnails/{path}",
        "/health",
        "/info",
        "/metrics",
        "/",
    }
    serve_help = COMMANDS["serve"].help
    section = README.split("### `searchctl serve", 1)[1].split("\n### ", 1)[0]
    for path in routes:
        shown = path.replace("{chunk_id}", "{id}")
        for method in paths[path]:
            assert f"{method.upper()} {shown}" in section, (
                f"README: {method.upper()} {shown} is not in the serve section"
            )
        assert shown in serve_help, f"serve --help does not list {shown}"
    # the MCP endpoint is no OpenAPI route, but a route all the same
    assert "POST /mcp" in section and "/mcp" in serve_help
    for param in PARAMS:
        assert f"`{param.name}" in section, f"README: search parameter {param.name} is not in the serve section"


def _python_examples() -> list[str]:
    return README.split("## Python", 1)[1].split("\n## ", 1)[0].split("```python\n")[1:]


def test_the_python_example_imports_only_what_the_packages_export():
    import ast
    import importlib

    blocks = [block.split("```", 1)[0] for block in _python_examples()]
    assert blocks, "the README has no Python example"
    imported = [
        (node.module, alias.name)
        for block in blocks
        for node in ast.walk(ast.parse(block))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("searchcore", "indexer")
        for alias in node.names
    ]
    assert imported, "the example imports nothing of the library"
    for module, name in imported:
        assert name in importlib.import_module(module).__all__, f"{module}.__all__ lacks {name}"


def test_the_python_example_runs(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(Path(__file__).resolve().parent.parent / "data" / "sample", tmp_path / "docs")
    monkeypatch.chdir(tmp_path)
    code = _python_examples()[0].split("```", 1)[0]
    # the hashing embedder stands in for the model: this runs the plumbing, not the ranking
    code = code.replace('Config(index_dir=Path(".searchctl"))', 'Config(index_dir=Path(".searchctl"), model="hash:64")')
    assert 'model="hash:64"' in code
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["summary"].added > 0 and (tmp_path / ".searchctl" / "index.db").exists()
    assert all(hit.kind == "markdown" for hit in scope["first"])
