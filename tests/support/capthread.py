"""A sender peer on its own thread and event loop, optionally stalling like a starved CPU.

Why a thread: the failure in reference/export-dts-failure.md comes from the *sender's* loop
running late (frames leave in a catch-up burst, the RTCP sender report taken then is late);
the receiver's loop must keep running meanwhile, as it does on the server.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Callable, Optional

from aiortc import RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from .caploop import make_offer


class ThreadedSender:
    """Publishes ``make_tracks()`` to ``session`` (an IngestSession on ``loop``) from a thread.

    With ``stall``, a task on the sender's loop blocks it for ``stall`` seconds
    (``time.sleep``) at random intervals of ``every`` seconds.
    """

    def __init__(self, session, loop: asyncio.AbstractEventLoop,
                 make_tracks: Callable[[], dict[str, MediaStreamTrack]], *,
                 stall: Optional[float] = None, every: tuple[float, float] = (0.15, 1.0), seed: int = 9) -> None:
        self.session, self.main_loop, self.make_tracks = session, loop, make_tracks
        self.stall, self.every, self.rng = stall, every, random.Random(seed)
        self.stalls = 0
        self._ready = threading.Event()
        self._stop: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self.error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name="test-sender", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await asyncio.to_thread(self._ready.wait, 30)
        if self.error is not None:
            raise self.error

    async def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, 30)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
            self._ready.set()

    async def _stall_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rng.uniform(*self.every))
            time.sleep(self.stall)  # blocks this loop, as a starved CPU does
            self.stalls += 1

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        pc, sdp, mapping = await make_offer(self.make_tracks())
        answer = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self.session.accept_offer(sdp, mapping), self.main_loop))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        staller = asyncio.ensure_future(self._stall_loop()) if self.stall else None
        self._ready.set()
        await self._stop.wait()
        if staller is not None:
            staller.cancel()
        await pc.close()
