"""Every package folder of the five stages is installed: ``pip install .`` (not editable) ships only
the packages pyproject.toml lists, so a new subpackage missing there works in a checkout and fails
once installed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.fast

ROOT = Path(__file__).resolve().parents[2]


def test_every_stage_package_is_listed_in_pyproject():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {package: Path(folder) for package, folder in tool["package-dir"].items()}
    found = set()
    for package, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "static" in init.parts:
                continue
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *relative)))
    assert found <= set(tool["packages"]), sorted(found - set(tool["packages"]))
