"""The command line's own manners: help, usage errors, version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SYNAPSE = str(Path(sys.executable).parent / "synapse")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SYNAPSE, *args], capture_output=True, text=True, check=False)


def test_plain_synapse_prints_the_help_and_succeeds() -> None:
    result = run()
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: synapse") and "use " in result.stdout and result.stderr == ""


def test_a_group_without_a_command_prints_its_help() -> None:
    result = run("store")
    assert result.returncode == 0 and "init" in result.stdout


def test_an_unknown_command_is_one_error_line() -> None:
    result = run("frobnicate")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: No such command 'frobnicate'. (see 'synapse --help')"]


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("synapse ")
