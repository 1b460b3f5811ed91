"""A Linux desktop for tests: Xvfb (one screen) and a private PulseAudio daemon.

PulseAudio runs with ``-n`` (no default script) and loads, in its own runtime dir and HOME:
``speakers`` (a null sink, the default: its monitor is ``system_audio:default``) and ``micsink`` (a
null sink whose monitor is remapped into the source ``mic``, the default source: what is played
into ``micsink`` is what the microphone hears). Nothing touches the machine's own X or sound.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import refuse_in_fast_tier

PACKAGES = {"Xvfb": "xvfb", "pulseaudio": "pulseaudio", "paplay": "pulseaudio-utils", "xsetroot": "x11-xserver-utils",
            "xrandr": "x11-xserver-utils"}


def require_desktop_tools() -> None:
    missing = sorted({pkg for exe, pkg in PACKAGES.items() if shutil.which(exe) is None})
    if missing:  # a broken setup, not a reason to skip: tests/run.sh installs them
        raise RuntimeError(f"missing {', '.join(missing)}: tests/run.sh installs them (apt-get install)")


@dataclass
class Desktop:
    root: Path
    display: str
    width: int = 1280
    height: int = 720
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """What a program on this desktop needs (a recorder, pactl, xsetroot)."""
        return {"DISPLAY": self.display, "XDG_RUNTIME_DIR": str(self.root / "run"), "HOME": str(self.root / "home"),
                "PULSE_SERVER": f"unix:{self.root / 'run' / 'pulse' / 'native'}"}

    def run(self, *argv: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), env={**os.environ, **self.env}, check=True, capture_output=True,
                              timeout=30, **kw)

    def fill(self, colour: str) -> None:
        """Paint the root window (the whole screen) one colour."""
        self.run("xsetroot", "-solid", colour)

    def play(self, wav: Path, sink: str = "micsink") -> subprocess.Popen:
        """Play a WAV into a sink (``micsink``: the microphone hears it; ``speakers``: system audio)."""
        p = subprocess.Popen(["paplay", "-d", sink, str(wav)], env={**os.environ, **self.env})
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def start_desktop(root: Path, width: int = 1280, height: int = 720) -> Desktop:
    refuse_in_fast_tier("a desktop (Xvfb, PulseAudio)")
    require_desktop_tools()
    (root / "run").mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / "home").mkdir(parents=True, exist_ok=True)
    log = open(root / "xvfb.log", "ab")
    # -displayfd: Xvfb takes a free display number itself and writes it to the pipe (no race with
    # the other desktops of a parallel run); -noreset: keep the root window's colour when the
    # last client (xsetroot) disconnects
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
                             "-nolisten", "tcp", "-noreset"], stdout=log, stderr=subprocess.STDOUT, pass_fds=(write_fd,))
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()  # empty when Xvfb exits first
    if not number:
        xvfb.kill()
        raise RuntimeError(f"Xvfb did not start: {(root / 'xvfb.log').read_text()[-2000:]}")
    desk = Desktop(root, f":{number}", width, height)
    desk.procs.append(xvfb)
    env = {**os.environ, **desk.env}
    env.pop("PULSE_SERVER")
    pa_log = open(root / "pulseaudio.log", "ab")
    desk.procs.append(subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--system=no",
         "-L", "module-native-protocol-unix auth-anonymous=1",
         "-L", "module-null-sink sink_name=speakers sink_properties=device.description=Speakers",
         "-L", "module-null-sink sink_name=micsink sink_properties=device.description=MicSink",
         "-L", "module-remap-source master=micsink.monitor source_name=mic source_properties=device.description=Microphone",
         "-L", "module-always-sink"],
        env=env, stdout=pa_log, stderr=subprocess.STDOUT))
    deadline = time.time() + 20
    while True:
        try:
            desk.run("xsetroot", "-solid", "black")
            desk.run("pactl", "set-default-sink", "speakers")
            desk.run("pactl", "set-default-source", "mic")
            break
        except (subprocess.CalledProcessError, FileNotFoundError):
            if time.time() > deadline or any(p.poll() is not None for p in desk.procs):
                desk.stop()
                raise RuntimeError(f"Xvfb/PulseAudio did not start: {(root / 'pulseaudio.log').read_text()[-2000:]}"
                                   f"{(root / 'xvfb.log').read_text()[-2000:]}")
            time.sleep(0.2)
    return desk
