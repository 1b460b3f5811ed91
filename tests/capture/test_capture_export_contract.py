"""The capture → export contract, end to end: a real IngestSession fed by real aiortc peers on
loopback writes a session folder, and export plans and exports it with the one shared schema."""

from __future__ import annotations

import asyncio
import json

import av
import pytest

from support.caploop import publish
from reeldb.capture.ingest import IngestSession
from reeldb.capture.manifest import MANIFEST_VERSION, file_name_for, load_manifest
from reeldb.capture.sources import BarsTrack, ToneTrack
from reeldb.export.mux import export_session
from reeldb.export.plan import load_manifest as export_load_manifest, make_plan

SECONDS = 3.0
CHANNELS = [
    {"channel_id": "mic:default", "type": "audio", "store": True, "is_primary": False},
    {"channel_id": "camera:1", "type": "video", "store": True, "is_primary": False},
    {"channel_id": "display:1", "type": "video", "store": True, "is_primary": False},
    {"channel_id": "display:2", "type": "video", "store": True, "is_primary": True},
]
SIZES = {"camera:1": (128, 96), "display:1": (160, 120), "display:2": (192, 144)}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions") / "cap-contract"

    async def main():
        session = IngestSession(folder, "cap-contract", CHANNELS)
        tracks = {"mic:default": ToneTrack(440, duration=SECONDS)}
        tracks.update({cid: BarsTrack(w, h, 15, duration=SECONDS) for cid, (w, h) in SIZES.items()})
        pc = await publish(session, tracks)
        await asyncio.sleep(SECONDS + 1.0)
        await pc.close()
        return await session.close()

    asyncio.run(main())
    return folder


@pytest.mark.slow
def test_capture_writes_the_schema_export_reads(recorded):
    raw = json.loads((recorded / "manifest.json").read_text())
    assert raw["version"] == MANIFEST_VERSION
    by_id = {c["channel_id"]: c for c in raw["channels"]}
    assert {cid: c["category"] for cid, c in by_id.items()} == {
        "mic:default": "mic", "camera:1": "camera", "display:1": "display", "display:2": "display"}
    assert {cid for cid, c in by_id.items() if c["is_primary"]} == {"display:2"}
    for cid, c in by_id.items():
        assert c["file"] == file_name_for(cid, c["kind"]) and (recorded / c["file"]).is_file()
        assert c["complete"] and c["frames"] > 10 and c["dts_clamps"] == 0 and c["error"] is None

    # One parser: what capture loads is what export plans from.
    assert export_load_manifest(recorded) == load_manifest(recorded)
    m = export_load_manifest(recorded)
    default = make_plan(m)
    assert default.video_channel_id == "display:2"  # capture's is_primary reached export
    assert [p.channel_id for p in default.audio] == ["mic:default"]
    assert {c.channel_id for c in default.raw} == set(SIZES) | {"mic:default"}
    for cid in ("display:1", "display:2"):
        plan = make_plan(m, cid)
        assert plan.video_channel_id == cid and not plan.transcode_video
        assert abs(plan.video.offset) < 0.5 and abs(plan.audio[0].offset) < 0.5  # capture clocks aligned


@pytest.mark.slow
@pytest.mark.parametrize("display", ["display:1", "display:2"])
def test_both_displays_export(recorded, tmp_path, display):
    result = export_session(recorded, tmp_path / "out", display)
    assert result.video_channel_id == display and result.video_copied
    info = result.muxed_info
    assert (info.width, info.height) == SIZES[display] and info.audio_codec == "aac"
    assert info.duration == pytest.approx(SECONDS, abs=0.6)
    assert set(result.channels) == set(SIZES) | {"mic:default"}
    assert result.channels["camera:1"].category == "camera"
    assert (result.channels["camera:1"].info.width, result.channels["camera:1"].info.height) == SIZES["camera:1"]
    assert not result.warnings, result.warnings
    with av.open(str(result.muxed_path)) as c:
        dts = [p.dts for p in c.demux(c.streams.video[0]) if p.dts is not None and p.size]
    assert all(b > a for a, b in zip(dts, dts[1:]))
