"""Every value of the SDK's editor enums is either rendered (and changes the picture) or refused
with a 400 that names the field and the value; unsupported fields are refused, never ignored."""

from __future__ import annotations

import av
import numpy as np
import pytest
from support.media import make_image, make_video, write_video
from support.speech import compose, require_espeak
from videodb.exceptions import InvalidRequestError

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:CaptionAsset:UserWarning")]

RES = "320x180"


def frame_at(url: str, t: float) -> np.ndarray:
    with av.open(url) as c:
        first = None
        for f in c.decode(video=0):
            first = float(f.time) if first is None else first
            if float(f.time) - first >= t - 1e-3:
                return f.to_ndarray(format="rgb24").astype(np.int16)
    raise AssertionError(f"no frame at {t}")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One server with a 4:3 picture, an image and an indexed speaking video."""
    require_espeak()
    import videodb
    from support.in_process import InProcessServer

    d = tmp_path_factory.mktemp("editor-enums")
    proc = InProcessServer(d / "data", env={"sync_wait": "10"}).start()
    try:
        conn = videodb.connect(api_key=proc.api_key, base_url=proc.url)
        coll = conn.get_collection()
        picture = np.zeros((240, 320, 3), np.uint8)
        picture[:120, :160] = (250, 40, 40)
        picture[:120, 160:] = (40, 250, 40)
        picture[120:, :160] = (40, 40, 250)
        picture[120:, 160:] = (240, 240, 240)
        speech, _ = compose(["Hello there everyone.", "This is the weekly meeting."], gap=0.8, lead=0.3)
        talk = coll.upload(file_path=str(write_video(d / "talk.mp4", speech, fps=10, size=(320, 240),
                                                     picture=lambda i: picture)))
        talk.index_spoken_words()
        image = coll.upload(file_path=str(make_image(d / "img.png", (64, 48))), media_type="image")
        plain = coll.upload(file_path=str(make_video(d / "plain.mp4", 2.0, (320, 180), 10, tone_hz=None)))
        small = np.zeros((120, 160, 3), np.uint8)
        small[:, :80] = (250, 200, 0)
        small[:, 80:] = (0, 200, 250)
        small[:40] = (250, 40, 40)  # a band at the top: crop (cut) and cover (stretched) differ
        quarter = coll.upload(file_path=str(write_video(d / "quarter.mp4", speech[:48000], fps=10, size=(160, 120),
                                                        picture=lambda i: small)))
        words = talk.get_transcript()
        spoken = next((w["start"] + w["end"]) / 2 for w in words if w["end"] - w["start"] >= 0.3)
        yield {"conn": conn, "talk": talk, "image": image, "plain": plain, "quarter": quarter,
               "spoken": spoken}
    finally:
        proc.stop()


def _render(conn, timeline) -> dict:
    return conn.post(path="editor", data=timeline.to_json())


def _timeline(conn, *tracks):
    from videodb.editor import Timeline

    timeline = Timeline(conn)
    timeline.resolution = RES
    for track in tracks:
        timeline.add_track(track)
    return timeline


def _track(*clips):
    from videodb.editor import Track

    track = Track()
    for start, clip in clips:
        track.add_clip(start, clip)
    return track


def _walk(world, enum, build, at: float, refused_expected: set) -> None:
    """Render each member of ``enum`` with ``build(member)``; rendered members must differ from
    one another (the value changed the picture), refused ones must be 400s naming the value."""
    conn = world["conn"]
    pictures: dict = {}
    refused = set()
    for member in enum:
        value = member.value
        try:
            answer = _render(conn, _timeline(conn, *build(member)))
        except InvalidRequestError as exc:
            message = str(exc)
            assert repr(str(value)) in message or f'"{value}"' in message, message
            refused.add(value)
            continue
        assert answer["stream_url"], member
        pictures[value] = frame_at(answer["stream_url"], at)
    assert refused == refused_expected, (enum.__name__, refused)
    values = list(pictures)
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            diff = np.abs(pictures[a] - pictures[b]).mean()
            assert diff > 0.5, f"{enum.__name__}: {a} and {b} render the same picture"


def test_fit_position_filter(world):
    from videodb.editor import Clip, Filter, Fit, Position, VideoAsset

    talk, quarter = world["talk"].id, world["quarter"].id  # 4:3 pictures in a 16:9 timeline
    _walk(world, Fit, lambda m: [_track((0, Clip(asset=VideoAsset(id=quarter), duration=0.5, fit=m)))], 0.2, set())
    _walk(world, Position, lambda m: [_track((0, Clip(asset=VideoAsset(id=talk), duration=1, scale=0.4,
                                                      position=m)))], 0.5, set())
    _walk(world, Filter, lambda m: [_track((0, Clip(asset=VideoAsset(id=talk), duration=1, filter=m)))], 0.5, set())


def test_text_alignments(world):
    from videodb.editor import (Alignment, Background, Clip, HorizontalAlignment, TextAlignment, TextAsset,
                                VerticalAlignment)

    _walk(world, TextAlignment, lambda m: [_track((0, Clip(asset=TextAsset(
        text="Hi", background=Background(width=300, height=160, color="#203040", text_alignment=m)),
        duration=0.5)))], 0.2, set())
    _walk(world, HorizontalAlignment, lambda m: [_track((0, Clip(asset=TextAsset(
        text="Hi", alignment=Alignment(horizontal=m), width=300, height=160), duration=0.5)))], 0.2, set())
    _walk(world, VerticalAlignment, lambda m: [_track((0, Clip(asset=TextAsset(
        text="Hi", alignment=Alignment(vertical=m), width=300, height=160), duration=0.5)))], 0.2, set())


def test_caption_enums(world):
    from videodb.editor import (BorderAndShadow, CaptionAlignment, CaptionAnimation, CaptionAsset,
                                CaptionBorderStyle, Clip, FontStyling, Positioning, VideoAsset)

    talk, at = world["talk"].id, world["spoken"]
    video = _track((0, Clip(asset=VideoAsset(id=talk), duration=4, filter=None)))

    def captioned(asset):
        return [video, _track((0, Clip(asset=asset, duration=4)))]

    small = FontStyling(size=16)
    _walk(world, CaptionAlignment, lambda m: captioned(CaptionAsset(font=small, position=Positioning(
        alignment=m, margin_l=10, margin_r=10, margin_v=10))), at, set())
    _walk(world, CaptionBorderStyle, lambda m: captioned(CaptionAsset(font=small, border=BorderAndShadow(
        style=m, outline=2), back_color="&H00FF0000")), at, set())
    _walk(world, CaptionAnimation, lambda m: captioned(CaptionAsset(font=small, animation=m)), at,
          {"box_highlight", "reveal", "karaoke", "impact", "supersize"})
    # color_highlight draws the spoken word in the secondary colour: not the plain caption
    plain = frame_at(_render(world["conn"], _timeline(world["conn"], *captioned(CaptionAsset(font=small))))
                     ["stream_url"], at)
    lit = frame_at(_render(world["conn"], _timeline(world["conn"], *captioned(CaptionAsset(
        font=small, animation=CaptionAnimation.color_highlight))))["stream_url"], at)
    assert np.abs(plain - lit).mean() > 0.05


def test_every_asset_type_renders(world):
    from videodb.editor import (AudioAsset, CaptionAsset, Clip, ImageAsset, TextAsset, VideoAsset)

    conn, talk = world["conn"], world["talk"].id
    tracks = [_track((0, Clip(asset=VideoAsset(id=talk), duration=1))),
              _track((0, Clip(asset=ImageAsset(id=world["image"].id), duration=1, scale=0.3))),
              _track((0, Clip(asset=AudioAsset(id=talk, volume=0.5), duration=1))),
              _track((0, Clip(asset=TextAsset(text="T"), duration=1))),
              _track((0, Clip(asset=CaptionAsset(), duration=1)))]
    answer = _render(conn, _timeline(conn, *tracks))
    assert answer["way"] == "render" and frame_at(answer["stream_url"], 0.5).shape == (180, 320, 3)


@pytest.mark.parametrize("mutate, named", [
    (lambda c: c["clip"].update(transition={"in": "wipeLeft", "out": None, "duration": 0.5}),
     ["transition.in", "'wipeLeft'"]),
    (lambda c: c["clip"].update(transition={"in": "fade", "out": "slideUp", "duration": 0.5}),
     ["transition.out", "'slideUp'"]),
    (lambda c: c["clip"].update(effect="zoomIn"), ["clip.effect", "'zoomIn'"]),
    (lambda c: c["clip"].update(filter="sepia"), ["clip.filter", "'sepia'"]),
    (lambda c: c["clip"].update(fit="stretch"), ["clip.fit", "'stretch'"]),
    (lambda c: c["clip"].update(position="middle"), ["clip.position", "'middle'"]),
    (lambda c: c["clip"].update(speed=2), ["clip.speed", "2"]),
    (lambda c: c["clip"]["asset"].update(volume=6), ["asset.volume", "6"]),
    (lambda c: c["clip"]["asset"].update(id="m-nope"), ["asset.id", "'m-nope'"]),
    (lambda c: c["clip"]["asset"].update(type="html"), ["asset.type", "'html'"]),
    (lambda c: c["clip"].update(duration=0), ["clip.duration", "0"]),
    (lambda c: c["clip"].update(scale=11), ["clip.scale", "11"]),
])
def test_unsupported_fields_and_values_are_400s_naming_them(world, mutate, named):
    from videodb.editor import Clip, VideoAsset

    conn = world["conn"]
    body = _timeline(conn, _track((0, Clip(asset=VideoAsset(id=world["plain"].id), duration=1)))).to_json()
    mutate(body["timeline"]["tracks"][0]["clips"][0])
    with pytest.raises(InvalidRequestError) as err:
        conn.post(path="editor", data=body)
    # an id that is not in the library is a 404, like any unknown id; the rest are 400s
    assert err.value.response.status_code == (404 if "'m-nope'" in named else 400)
    for word in named:
        assert word in str(err.value), (word, str(err.value))


def test_timeline_level_refusals(world):
    from videodb.editor import CaptionAsset, Clip, VideoAsset

    conn = world["conn"]
    ok = _timeline(conn, _track((0, Clip(asset=VideoAsset(id=world["plain"].id), duration=1)))).to_json()
    for change, named in ((("resolution", "1281x720"), "'1281x720'"), (("background", "blue"), "'blue'"),
                          (("tracks", []), "timeline.tracks")):
        body = {"timeline": {**ok["timeline"], change[0]: change[1]}}
        with pytest.raises(InvalidRequestError, match=named.replace("(", r"\(")):
            conn.post(path="editor", data=body)
    with pytest.raises(InvalidRequestError, match="timeline_url: not an upload URL of this server"):
        conn.post(path="editor", data={"timeline_url": "http://example.invalid/t.json"})
    # a caption needs an indexed video on the timeline
    plain = _timeline(conn, _track((0, Clip(asset=VideoAsset(id=world["plain"].id), duration=1))),
                      _track((0, Clip(asset=CaptionAsset(), duration=1))))
    with pytest.raises(InvalidRequestError, match="index_spoken_words") as err:
        _render(conn, plain)
    assert err.value.response.status_code == 409  # a state: index the video, then ask again
    body = plain.to_json()
    body["timeline"]["tracks"][1]["clips"][0]["clip"]["asset"]["src"] = "W1NjcmlwdCBJbmZvXQ=="
    with pytest.raises(InvalidRequestError, match=r"asset.src.*only 'auto'"):
        conn.post(path="editor", data=body)


def test_a_large_timeline_goes_through_timeline_url(world):
    """Over 100 KiB the SDK uploads the JSON (upload_bytes) and posts its URL."""
    from videodb.editor import Clip, Font, TextAsset
    from videodb.editor import MAX_PAYLOAD_SIZE

    conn = world["conn"]
    words = " ".join(f"w{i}" for i in range(900))
    clips = [(i * 0.2, Clip(asset=TextAsset(text=f"#{i} {words}", font=Font(size=12)), duration=0.2))
             for i in range(40)]
    timeline = _timeline(conn, _track(*clips))
    assert len(__import__("json").dumps(timeline.to_json())) > MAX_PAYLOAD_SIZE
    stream_url = timeline.generate_stream()
    assert stream_url and timeline.player_url
    assert abs(frame_at(stream_url, 7.9).shape[0] - 180) == 0
    assert conn.post(path="editor", data=timeline.to_json())["stream_url"] == stream_url
