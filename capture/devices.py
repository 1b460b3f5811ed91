"""Real capture devices on Linux: X11 screens (PyAV's ``x11grab``) and PulseAudio/PipeWire audio.

What is probed (``probe()``), and the source specs it hands to ``sources.open_source``:

- **Screens**: each XRandR monitor of ``$DISPLAY`` is ``display:N`` (N from 1, in
  ``xrandr --listmonitors`` order) with the spec ``x11:<display>@<x>,<y>,<w>x<h>``; without
  ``xrandr`` (or with no monitor listed, as a bare Xvfb may answer) the whole root window is
  ``display:1`` (``x11:<display>``, its size read by opening ``x11grab`` once).
- **Audio**: through the ``soundcard`` package (libpulse via cffi; PipeWire answers it through
  ``pipewire-pulse``). ``mic:default`` is the server's default source (``pulse:@DEFAULT_SOURCE@``),
  other input sources are ``mic:<source name>``, and ``system_audio:default`` is the default
  sink's monitor (``pulse:@DEFAULT_MONITOR@``). PyAV's wheels carry no ``pulse`` input, hence
  the separate library. ``soundcard`` connects to the server when imported, so it is imported only
  when a server socket exists (``$PULSE_SERVER``, else ``pulse/native`` in ``$XDG_RUNTIME_DIR``
  or ``/run/user/<uid>``): no libpulse autospawn on a machine without sound.
- **Wayland**: ``$WAYLAND_DISPLAY`` without ``$DISPLAY`` has no screen we can grab (the
  xdg-desktop-portal ScreenCast / PipeWire path is not implemented): no display channel, and
  :attr:`Devices.notes` says so. With XWayland (``$DISPLAY`` set too) ``x11grab`` sees X11
  windows only (native Wayland windows come out black); the channel's name says so.

No module reads the environment except through ``env`` passed in (the recorder's ``main``
passes ``os.environ``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

logger = logging.getLogger("reeldb.recorder.devices")

DEFAULT_SOURCE = "@DEFAULT_SOURCE@"
DEFAULT_MONITOR = "@DEFAULT_MONITOR@"
_MONITOR_LINE = re.compile(r"^\s*(\d+):\s+[+*]*(\S+)\s+(\d+)/\d+x(\d+)/\d+\+(-?\d+)\+(-?\d+)")
_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")
WAYLAND_ONLY = ("Wayland session without XWayland: screen capture needs the desktop portal "
                "(PipeWire ScreenCast), which reeldb-recorder does not support; log in to an X11 "
                "session, or record the screen with the browser page /capture. Audio works.")
XWAYLAND = ("Wayland session: the screen is grabbed through XWayland, which shows X11 windows "
            "only (native Wayland windows come out black); an X11 session records everything.")


@dataclass(frozen=True)
class Monitor:
    index: int  # 1-based: display:<index>
    name: str
    x: int
    y: int
    width: int
    height: int


@dataclass
class Devices:
    """What this machine offers: channel id → (name, source spec), plus notes for humans."""

    channels: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    screen: str = "none"  # "x11" | "xwayland" | "wayland-only" | "none"
    audio: str = "none"  # "pulseaudio" | "pipewire" | "none"

    def sources(self) -> dict[str, str]:
        return {cid: spec for cid, (_, spec) in self.channels.items()}

    def names(self) -> dict[str, str]:
        return {cid: name for cid, (name, _) in self.channels.items()}


# ------------------------------------------------------------------------------ X11 (pure part)

def parse_listmonitors(text: str) -> list[Monitor]:
    """``xrandr --listmonitors`` → monitors (``0: +*eDP-1 1920/344x1080/194+0+0  eDP-1``)."""
    out = []
    for line in text.splitlines():
        m = _MONITOR_LINE.match(line)
        if m:
            idx, name, w, h, x, y = m.groups()
            out.append(Monitor(int(idx) + 1, name, int(x), int(y), int(w), int(h)))
    return out


def x11_spec(display: str, monitor: Optional[Monitor] = None) -> str:
    if monitor is None:
        return f"x11:{display}"
    return f"x11:{display}@{monitor.x},{monitor.y},{monitor.width}x{monitor.height}"


def parse_x11_spec(spec: str) -> tuple[str, Optional[tuple[int, int, int, int]]]:
    """``x11::0@0,0,1920x1080`` → (``:0``, (x, y, w, h)); ``x11::0`` → (``:0``, None)."""
    body = spec[len("x11:"):]
    display, _, geometry = body.partition("@")
    if not display:
        raise ValueError(f"{spec!r}: no X display (x11:<display>[@x,y,WxH])")
    if not geometry:
        return display, None
    try:
        x, y, size = geometry.split(",")
        w, _, h = size.partition("x")
        return display, (int(x), int(y), int(w), int(h))
    except ValueError as exc:
        raise ValueError(f"{spec!r}: geometry is x,y,WxH") from exc


def x11_monitors(display: str, env: Mapping[str, str]) -> list[Monitor]:
    """The XRandR monitors of ``display`` (empty when xrandr is missing or says nothing)."""
    exe = shutil.which("xrandr")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--display", display, "--listmonitors"], capture_output=True, text=True,
                             timeout=5, env=dict(env)).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_listmonitors(out)


def x11_root_size(display: str) -> Optional[tuple[int, int]]:
    """The root window's size, read by opening x11grab once (None if the display can't be opened)."""
    import av

    try:
        with av.open(display, format="x11grab", options={"framerate": "1"}) as c:
            s = c.streams.video[0]
            return s.codec_context.width, s.codec_context.height
    except (av.FFmpegError, OSError, IndexError) as exc:
        logger.warning("cannot open X display %s: %s", display, exc)
        return None


# --------------------------------------------------------------------------------- PulseAudio

def pulse_socket(env: Mapping[str, str]) -> Optional[str]:
    """Where a PulseAudio-protocol server listens, if one seems to (PipeWire's pulse server too)."""
    if env.get("PULSE_SERVER"):
        return env["PULSE_SERVER"]
    runtime = Path(env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
    socket = runtime / "pulse" / "native"
    return str(socket) if socket.exists() else None


def soundcard_module():
    """Import ``soundcard`` (it connects to the sound server on import). Raises ImportError or
    RuntimeError when there is none."""
    if "soundcard" in sys.modules:
        return sys.modules["soundcard"]
    argv = sys.argv
    if not argv or argv[0] in ("-c", "-m") and len(argv) < 2:  # soundcard names its client from argv
        sys.argv = ["reeldb-recorder"]
    try:
        import soundcard  # noqa: PLC0415
    except AssertionError as exc:  # its context never reached READY
        sys.modules.pop("soundcard", None)
        sys.modules.pop("soundcard.pulseaudio", None)
        raise RuntimeError("cannot connect to the PulseAudio/PipeWire server") from exc
    finally:
        sys.argv = argv
    return soundcard


def safe_id(name: str) -> str:
    return _SAFE.sub("_", name)[:80] or "device"


def audio_devices(env: Mapping[str, str]) -> tuple[dict[str, tuple[str, str]], str, list[str]]:
    """(channels, server kind, notes) for the sound server's sources."""
    if pulse_socket(env) is None:
        return {}, "none", ["no PulseAudio/PipeWire server found: no microphone or system audio"]
    try:
        sc = soundcard_module()
        default = sc.default_microphone()
        mics = sc.all_microphones(include_loopback=False)
        speaker = sc.default_speaker()
        server = _server_name(sc)
    except Exception as exc:  # noqa: BLE001 - any failure means "no audio", said clearly
        return {}, "none", [f"sound server not usable ({exc}): no microphone or system audio"]
    channels: dict[str, tuple[str, str]] = {}
    if default is not None:
        channels["mic:default"] = (f"Default Microphone ({default.name})", f"pulse:{DEFAULT_SOURCE}")
    for mic in mics:
        if default is not None and mic.id == default.id:
            continue
        channels[f"mic:{safe_id(mic.id)}"] = (mic.name, f"pulse:{mic.id}")
    if speaker is not None:
        channels["system_audio:default"] = (f"System Audio ({speaker.name})", f"pulse:{DEFAULT_MONITOR}")
    return channels, server, []


def _server_name(sc) -> str:
    try:
        name = sc.pulseaudio._pulse.server_info["server name"]  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return "pulseaudio"
    return "pipewire" if "pipewire" in str(name).lower() else "pulseaudio"


def resolve_pulse(spec_name: str):
    """A ``soundcard`` microphone for ``pulse:<name>`` (``@DEFAULT_SOURCE@``, ``@DEFAULT_MONITOR@``
    or a source name)."""
    sc = soundcard_module()
    if spec_name == DEFAULT_SOURCE:
        mic = sc.default_microphone()
        if mic is None:
            raise RuntimeError("the sound server has no default source")
        return mic
    if spec_name == DEFAULT_MONITOR:
        speaker = sc.default_speaker()
        if speaker is None:
            raise RuntimeError("the sound server has no default sink")
        for mic in sc.all_microphones(include_loopback=True):
            if mic.isloopback and (mic.id == f"{speaker.id}.monitor" or mic.name == f"Monitor of {speaker.name}"):
                return mic
        raise RuntimeError(f"no monitor source for the default sink {speaker.id}")
    return sc.get_microphone(spec_name, include_loopback=True)


# ------------------------------------------------------------------------------------ probing

def probe(env: Mapping[str, str]) -> Devices:
    """Screens and audio devices this machine has now."""
    dev = Devices()
    display = env.get("DISPLAY")
    wayland = env.get("WAYLAND_DISPLAY")
    if display:
        monitors = x11_monitors(display, env)
        suffix = " (XWayland)" if wayland else ""
        if monitors:
            for m in monitors:
                dev.channels[f"display:{m.index}"] = (f"Display {m.index} ({m.name} {m.width}x{m.height}){suffix}",
                                                      x11_spec(display, m))
        else:
            size = x11_root_size(display)
            if size:
                dev.channels["display:1"] = (f"Display 1 ({display} {size[0]}x{size[1]}){suffix}", x11_spec(display))
        if dev.channels:
            dev.screen = "xwayland" if wayland else "x11"
            if wayland:
                dev.notes.append(XWAYLAND)
        else:
            dev.notes.append(f"X display {display} cannot be opened: no screen channel")
    elif wayland:
        dev.screen = "wayland-only"
        dev.notes.append(WAYLAND_ONLY)
    else:
        dev.notes.append("no X display ($DISPLAY unset): no screen channel")
    audio, kind, notes = audio_devices(env)
    dev.channels.update(audio)
    dev.audio = kind
    dev.notes += notes
    return dev
