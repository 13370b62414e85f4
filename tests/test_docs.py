"""Every command and option has help text and is documented in the README."""

from pathlib import Path

import click
import pytest

from searchctl.cli import cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
COMMANDS = sorted(cli.commands)


def test_the_readme_quick_start_is_the_two_make_commands():
    assert "make demo" in README and "make test" in README


@pytest.mark.parametrize("name", COMMANDS)
def test_command_has_help_and_a_readme_section(name):
    command = cli.commands[name]
    assert command.help and command.help.strip(), f"{name} has no help text"
    assert f"### `searchctl {name}" in README, f"README has no section for searchctl {name}"


@pytest.mark.parametrize(
    "name,option",
    [
        (name, opt)
        for name in COMMANDS
        for param in cli.commands[name].params
        if isinstance(param, click.Option)
        for opt in param.opts
    ],
)
def test_every_option_is_documented(name, option):
    param = next(p for p in cli.commands[name].params if option in getattr(p, "opts", []))
    assert param.help, f"{name} {option} has no help text"
    section = README.split(f"### `searchctl {name}", 1)[1].split("\n### ", 1)[0]
    assert f"`{option}" in section, f"README section for searchctl {name} does not mention {option}"
