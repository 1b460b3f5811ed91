"""Every job kind that runs away from the control node says what its params hold, in one module
(``server/jobs/payloads.py``), and a job whose params are not that is refused naming the field."""

from __future__ import annotations

import pytest

from reeldb.server.jobs.parts import compute_parts
from reeldb.server.jobs.payloads import PARAMS, BadParams, check

pytestmark = pytest.mark.fast


def test_every_compute_part_has_typed_params():
    assert set(compute_parts()) == set(PARAMS)


def test_params_are_checked_by_field():
    good = {"session_id": "cap-1", "collection_id": "default", "video_channel_id": None, "include_raw": True,
            "video_id": "m-1", "asset_ids": {"mic:default": "a-1"}}
    check("export", good)
    check("export", {**good, "added_by_a_newer_node": 1})  # unknown fields: allowed
    with pytest.raises(BadParams, match="video_id"):
        check("export", {k: v for k, v in good.items() if k != "video_id"})
    with pytest.raises(BadParams, match="include_raw"):
        check("export", {**good, "include_raw": "yes"})
    with pytest.raises(BadParams, match="source"):
        check("upload", {"source": "ftp", "collection_id": "default", "media_id": "m-1"})
