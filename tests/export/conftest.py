"""Fixtures for the export stage: synthetic session folders made once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.media import standard_session


@pytest.fixture(scope="session")
def std_session(tmp_path_factory) -> Path:
    return standard_session(tmp_path_factory.mktemp("sessions"))


@pytest.fixture(scope="session")
def std_export(std_session, tmp_path_factory):
    from reeldb.export.mux import export_session

    return export_session(std_session, tmp_path_factory.mktemp("out"))
