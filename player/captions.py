"""Captions and transcript cues for the player, from a transcript's sentences (pure)."""

from __future__ import annotations

from typing import Any, Iterable


def _ts(seconds: float) -> str:
    ms = max(0, int(round(seconds * 1000)))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


#: How a capture channel is named to a viewer: the microphone is the person at the keyboard,
#: system audio the others on the call (the API's ``channel`` values are the keys).
SPEAKERS = {"mic": "Mic", "system_audio": "System audio"}


def speaker(channel: str) -> str:
    return SPEAKERS.get(channel, channel.replace("_", " ").capitalize())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cues: Iterable[dict[str, Any]]) -> str:
    """A WebVTT file of ``{start, end, text}`` cues (seconds); empty cues are left out. Cue text is
    escaped as WebVTT requires (``&``, ``<``, ``>``), and ``-->`` cannot appear in it.

    A cue with a ``channel`` (a capture channel transcribed on its own) is a voice span named
    after it, ``<v Mic>``, and starts with the name too ("Mic: …"): browsers do not draw a voice's
    name, and a viewer should see who spoke."""
    lines = ["WEBVTT", ""]
    n = 0
    for cue in cues:
        text = str(cue.get("text") or "").strip()
        if not text or cue["end"] <= cue["start"]:
            continue
        n += 1
        text = _escape(text)
        if cue.get("channel"):
            name = _escape(speaker(str(cue["channel"])))
            text = f"<v {name}>{name}: {text}</v>"
        lines += [str(n), f"{_ts(cue['start'])} --> {_ts(cue['end'])}", text, ""]
    return "\n".join(lines)


def subtitled_master(variant_uri: str, bandwidth: int, subtitles_uri: str, language: str = "en",
                     name: str = "English") -> str:
    """A master playlist: the video's own rendition plus the transcript as a WebVTT subtitle
    rendition (``EXT-X-MEDIA TYPE=SUBTITLES``), which every HLS player lists as captions.
    Nothing is re-encoded: the video playlist is the existing one."""
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3",
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{name}",LANGUAGE="{language}",'
        f'DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="{subtitles_uri}"',
        f'#EXT-X-STREAM-INF:BANDWIDTH={max(1, bandwidth)},SUBTITLES="subs"',
        variant_uri, ""])


def subtitles_playlist(vtt_uri: str, duration: float) -> str:
    """The subtitle rendition's media playlist: one WebVTT segment spanning the whole video."""
    return "\n".join([
        "#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{max(1, int(-(-duration // 1)))}",
        "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", f"#EXTINF:{duration:.3f},", vtt_uri,
        "#EXT-X-ENDLIST", ""])


def with_timestamp_map(vtt: str, first_pts_90k: int) -> str:
    """WebVTT for an HLS subtitle rendition: ``X-TIMESTAMP-MAP`` ties cue time 0 to the video's
    first MPEG-TS timestamp, so cues line up with the picture in every player."""
    head, _, rest = vtt.partition("\n")
    return f"{head}\nX-TIMESTAMP-MAP=MPEGTS:{first_pts_90k},LOCAL:00:00:00.000\n{rest}"
