"""The recorder's device probing, without devices: xrandr parsing, specs, Wayland, plan_sources."""

from __future__ import annotations

import json

import pytest

from reeldb.capture import devices
from reeldb.capture.sources import SourceError, declared_channels, plan_sources

LISTMONITORS = """Monitors: 2
 0: +*eDP-1 1920/344x1080/194+0+0  eDP-1
 1: +HDMI-1 2560/597x1440/336+1920+0  HDMI-1
"""


def test_xrandr_monitors_become_numbered_displays():
    mons = devices.parse_listmonitors(LISTMONITORS)
    assert mons == [devices.Monitor(1, "eDP-1", 0, 0, 1920, 1080), devices.Monitor(2, "HDMI-1", 1920, 0, 2560, 1440)]
    spec = devices.x11_spec(":0", mons[1])
    assert spec == "x11::0@1920,0,2560x1440"
    assert devices.parse_x11_spec(spec) == (":0", (1920, 0, 2560, 1440))
    assert devices.parse_x11_spec("x11::1") == (":1", None)
    assert devices.parse_listmonitors("Monitors: 0\n") == []
    with pytest.raises(ValueError):
        devices.parse_x11_spec("x11::0@1,2")


def test_wayland_without_xwayland_says_so_and_offers_patterns(tmp_path):
    env = {"WAYLAND_DISPLAY": "wayland-0", "XDG_RUNTIME_DIR": str(tmp_path)}
    found = devices.probe(env)
    assert found.screen == "wayland-only" and not found.channels
    assert any("Wayland" in n and "portal" in n for n in found.notes)
    plan = plan_sources(env)
    assert plan.origin == "patterns" and "display:1" in plan.sources and any("Wayland" in n for n in plan.notes)
    with pytest.raises(SourceError, match="no capture devices: Wayland"):
        plan_sources({**env, "REELDB_CAPTURE_SOURCES": "devices"})


def test_capture_sources_keywords_and_maps(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert plan_sources({**env, "REELDB_CAPTURE_SOURCES": "patterns"}).origin == "patterns"
    mapped = plan_sources({**env, "REELDB_CAPTURE_SOURCES": json.dumps({"display:2": "x11::0", "mic:default": "pulse:mic"})})
    assert mapped.origin == "configured" and mapped.sources["display:2"] == "x11::0"
    with pytest.raises(SourceError):
        plan_sources({**env, "REELDB_CAPTURE_SOURCES": "[1]"})
    names = {c.channel_id: c.name for c in declared_channels({"display:1": "x", "mic:default": "y"},
                                                             {"display:1": "Display 1 (eDP-1 1920x1080)"})}
    assert names == {"display:1": "Display 1 (eDP-1 1920x1080)", "mic:default": "Default Microphone"}


def test_no_sound_server_means_no_audio_and_no_autospawn(tmp_path):
    channels, kind, notes = devices.audio_devices({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert (channels, kind) == ({}, "none") and "no PulseAudio" in notes[0]
