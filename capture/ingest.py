"""One capture session's WebRTC ingest: an aiortc peer connection, the tap, the writers, the manifest.

No HTTP and no database: the server owns an :class:`IngestSession` per capture session, hands it
the recorder's offer and gets an answer back, and hears about progress through two callbacks
(``on_media(channel_id)``, ``on_state(state)``). Everything the export stage needs ends up in the
session folder (one Matroska file per stored channel + ``manifest.json``).

Why it is built this way:
- Stored channels are written from the encoded-frame tap, never decoded (``capture/tap.py``).
- Ephemeral channels (``store: false``) are never written anywhere, not even a temp file; their
  frames are dropped at the tap unless a live consumer (``capture/live.py``) wants them decoded (audio or video).
- Each frame's capture time comes from RTCP sender reports (the sender's NTP clock) so channels
  line up; a stored channel's first frames wait up to ``sr_wait`` seconds for a report, then fall
  back to arrival time. The choice is fixed per file and written to the manifest (``clock``).
- The manifest is rewritten atomically every ``manifest_interval`` so a crash leaves it usable.
- A second offer (the recorder reconnected) replaces the peer connection but keeps the files:
  the next frame of each channel is a discontinuity, so video resumes at a keyframe and the hole
  is recorded as a gap.
- Keyframe cadence: browsers send a keyframe only when asked (Chromium: 2 in a 60 s recording),
  and a recording with one GOP makes one HLS segment, clips that play the whole file and
  thumbnails that decode everything. So every stored video channel asks its sender for a
  keyframe (PLI, FIR where negotiated) whenever none has arrived for ``keyframe_interval``
  seconds, and asks again every ``min(interval, 1 s)`` while none comes (a lost request costs
  one second, not one interval). Counts go to the manifest (``keyframe_requests``,
  ``keyframes``, ``max_keyframe_gap``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Optional, Union

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc import sdp as aiortc_sdp

from .clock import CaptureClock, SenderReport
from .errors import (ChannelSpecError, IngestError, MalformedOfferError, NoCommonCodecError, SessionClosedError,
                     TooManyTracksError, TrackMappingError, UnknownChannelError)
from .live import LiveHub
from .manifest import ChannelManifest, SessionManifest, file_name_for, is_channel_id, kind_of, new_channel, save_manifest
from .tap import ReceiverTap, TappedFrame, install_tap
from .writer import ChannelWriter, InlineWriter, is_keyframe

logger = logging.getLogger(__name__)

CONNECTION_STATES = ("connected", "disconnected", "failed", "closed")
VIDEO_CODEC_PREFERENCE = ("video/H264", "video/VP8")
AUDIO_CODEC_PREFERENCE = ("audio/opus",)


@dataclass(frozen=True)
class ChannelSpec:
    """A channel of the session as the server knows it."""

    channel_id: str
    kind: str  # "audio" | "video"
    store: bool
    is_primary: bool = False  # written to the manifest: export's default video

    @classmethod
    def coerce(cls, value: Union["ChannelSpec", dict[str, Any]]) -> "ChannelSpec":
        """From the server's channel dict (``kind`` or ``type``); the id must follow the
        manifest's channel-id rules and the kind must be the one the id implies."""
        if isinstance(value, ChannelSpec):
            spec = value
        else:
            if not value.get("channel_id"):
                raise ChannelSpecError("channel without channel_id")
            spec = cls(channel_id=str(value["channel_id"]), kind=value.get("kind") or value.get("type"),
                       store=bool(value.get("store", False)), is_primary=value.get("is_primary") is True)
        if not is_channel_id(spec.channel_id):
            raise ChannelSpecError(f"{spec.channel_id!r} is not a channel id like 'mic:default' or 'display:1'")
        if spec.kind != kind_of(spec.channel_id):
            raise ChannelSpecError(f"channel {spec.channel_id!r} is {kind_of(spec.channel_id)}, not {spec.kind!r}")
        return spec


Callback = Callable[..., Union[None, Awaitable[None]]]


class _Channel:
    """Runtime state of one channel (event-loop thread only)."""

    def __init__(self, spec: ChannelSpec, entry: ChannelManifest) -> None:
        self.spec = spec
        self.entry = entry
        self.clock: Optional[CaptureClock] = None
        self.clock_decided = False
        self.buffer: list[tuple[int, bytes, bool]] = []
        self.buffer_since = 0.0
        self.writer: Optional[InlineWriter] = None
        self.receiver: Optional[RTCRtpReceiver] = None
        self.codec: Optional[str] = None
        self.tap: Optional[ReceiverTap] = None
        self.media_seen = False
        self.connection_started = False
        self.paused = False
        #: The pause's start on this channel's capture clock: frames captured before it still
        #: belong to the recording when they arrive after the pause request (see ``pause``).
        self.paused_after: Optional[float] = None
        #: Capture time of the last frame handed to the writer, and when (our wall clock).
        self.last_written: Optional[tuple[float, float]] = None
        self.discontinuity = False
        # keyframe cadence (monotonic seconds): since when we wait for a keyframe, the last
        # request, whether it is still unanswered, the previous keyframe for the gap statistic
        self.keyframe_since: Optional[float] = None
        self.keyframe_asked: Optional[float] = None
        self.keyframe_unanswered = 0
        self.last_keyframe: Optional[float] = None


class IngestSession:
    """Receives one capture session over WebRTC and writes its stored channels.

    :param folder: the session folder, ``<data_dir>/sessions/<cap-id>/`` (created if missing).
    :param session_id: the ``cap-…`` id, written to the manifest.
    :param channels: ``[{channel_id, kind (or type), store}]`` or :class:`ChannelSpec` items.
    :param on_media: called with a channel id when that channel's first frame arrives.
    :param on_state: called with ``connected`` / ``disconnected`` / ``failed`` / ``closed``.
    :param live: hub for live audio consumers (one is made if not given; see :attr:`live`).
    :param sr_wait: seconds a stored channel waits for an RTCP sender report before using
        arrival time as its clock.
    :param rtc_configuration: aiortc configuration; defaults to no ICE servers (offline, LAN).
    :param keyframe_interval: seconds a stored video channel may go without a keyframe before the
        sender is asked for one (PLI / FIR); 0 turns the cadence off (only the requests at start
        and resume remain). The server passes ``REELDB_KEYFRAME_INTERVAL``.
    """

    def __init__(
        self,
        folder: Union[str, Path],
        session_id: str,
        channels: Iterable[Union[ChannelSpec, dict[str, Any]]],
        *,
        on_media: Optional[Callback] = None,
        on_state: Optional[Callback] = None,
        live: Optional[LiveHub] = None,
        sr_wait: float = 2.0,
        manifest_interval: float = 1.0,
        rtc_configuration: Optional[RTCConfiguration] = None,
        keyframe_interval: float = 4.0,
    ) -> None:
        if not isinstance(keyframe_interval, (int, float)) or keyframe_interval < 0:
            raise ValueError(f"keyframe_interval must be a number >= 0, got {keyframe_interval!r}")
        self.folder = Path(folder)
        self.keyframe_interval = float(keyframe_interval)
        self.session_id = session_id
        self.live = live or LiveHub()
        self.sr_wait = sr_wait
        self.manifest_interval = manifest_interval
        # max-bundle: the transceivers we pre-create (see accept_offer) must share one transport
        # from the start. Under aiortc's default "balanced" policy a second transceiver of the
        # same kind is marked bundled onto the first one's transport, which BUNDLE negotiation
        # then discards: that channel silently receives nothing.
        self._rtc_configuration = dataclasses.replace(
            rtc_configuration or RTCConfiguration(iceServers=[]),
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )
        self._on_media = on_media
        self._on_state = on_state
        self._channels: dict[str, _Channel] = {}
        self.manifest = SessionManifest(session_id=session_id)
        for raw in channels:
            spec = ChannelSpec.coerce(raw)
            if spec.channel_id in self._channels:
                raise ChannelSpecError(f"duplicate channel id {spec.channel_id!r}")
            entry = new_channel(spec.channel_id, spec.kind, spec.store, is_primary=spec.is_primary)
            if spec.kind == "video" and spec.store:
                entry.keyframe_interval = self.keyframe_interval
            self.manifest.channels.append(entry)
            self._channels[spec.channel_id] = _Channel(spec, entry)
        if not self._channels:
            raise ChannelSpecError("a session needs at least one channel")
        self._pc: Optional[RTCPeerConnection] = None
        self._closed = False
        self._tasks: set[asyncio.Task] = set()
        self._manifest_task: Optional[asyncio.Task] = None
        self._keyframe_task: Optional[asyncio.Task] = None
        self._lock = asyncio.Lock()
        self.state = "new"
        self.folder.mkdir(parents=True, exist_ok=True)
        save_manifest(self.folder, self.manifest)

    # -- public API ---------------------------------------------------------------------------
    @property
    def channel_ids(self) -> list[str]:
        return list(self._channels)

    def stats(self) -> list[dict[str, Any]]:
        """Each channel's counters as they stand (for metrics; call on the event loop): frames
        written, frames dropped by the writer, gaps (losses), keyframes and keyframe requests,
        the bytes its file holds (only the path is read here; the caller stats it), and the
        seconds of audio its live transcripts shed under load (``shed_seconds``) and the frames
        its live screen reader skipped (``shed_frames``)."""
        out = []
        for ch in self._channels.values():
            w = ch.writer.writer if ch.writer is not None else None
            out.append({
                "channel_id": ch.spec.channel_id, "kind": ch.spec.kind, "store": ch.spec.store,
                "paused": ch.paused, "frames": w.frames if w else 0, "dropped": w.dropped if w else 0,
                "gaps": len(w.gaps) if w else 0, "keyframes": ch.entry.keyframes,
                "keyframe_requests": ch.entry.keyframe_requests,
                "first_frame_at": w.first_frame_at if w else None, "last_frame_at": w.last_frame_at if w else None,
                "path": str(w.path) if w is not None and (w.opened or w.frames) else None,
                "shed_seconds": self.live.shed_seconds(ch.spec.channel_id),
                "shed_frames": self.live.shed_frames(ch.spec.channel_id),
            })
        return out

    async def rtp_stats(self) -> dict[str, tuple[int, int]]:
        """RTP packets received and lost per channel, from aiortc's receiver statistics (public
        ``getStats()``: the tap leaves aiortc's packet accounting alone)."""
        out: dict[str, tuple[int, int]] = {}
        for ch in list(self._channels.values()):
            if ch.receiver is None:
                continue
            received = lost = 0
            for stat in (await ch.receiver.getStats()).values():
                if getattr(stat, "type", None) == "inbound-rtp":
                    received += stat.packetsReceived or 0
                    lost += max(0, stat.packetsLost or 0)
            out[ch.spec.channel_id] = (received, lost)
        return out

    async def accept_offer(self, sdp: str, tracks: dict[str, str]) -> str:
        """Answer the recorder's offer; ``tracks`` maps each m-line's mid to a channel id.

        Raises :class:`MalformedOfferError`, :class:`UnknownChannelError`,
        :class:`TrackMappingError`, :class:`TooManyTracksError`, :class:`NoCommonCodecError`,
        :class:`SessionClosedError`.
        """
        async with self._lock:
            if self._closed:
                raise SessionClosedError(f"session {self.session_id} is closed")
            media = self._validate_offer(sdp, tracks)
            if self._pc is not None:  # reconnect: new connection, same files
                old, self._pc = self._pc, None
                for ch in self._channels.values():
                    if ch.tap is not None:
                        self.live.unbind(ch.spec.channel_id)
                    ch.tap = None
                    ch.connection_started = False
                    ch.discontinuity = True
                await old.close()
            pc = RTCPeerConnection(self._rtc_configuration)
            self._pc = pc
            pc.on("connectionstatechange", lambda: self._connection_state(pc))
            # Pre-create one recvonly transceiver per m-line, in order, with our codec
            # preferences: aiortc matches them to the offer's m-lines and orders the answer's
            # codecs by preference (H.264 first), which is what the sender will use.
            for kind, _mid in media:
                t = pc.addTransceiver(kind, direction="recvonly")
                t.setCodecPreferences(_preferred_codecs(kind))
            try:
                await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            except Exception as exc:
                await pc.close()
                self._pc = None
                if "send parameters" in str(exc) or "codec" in str(exc).lower():
                    raise NoCommonCodecError(
                        f"offer has no codec we store without re-encoding (H.264, VP8, Opus): {exc}"
                    ) from exc
                raise MalformedOfferError(f"offer rejected: {exc}") from exc
            for transceiver in pc.getTransceivers():
                channel = self._channels[tracks[transceiver.mid]]
                self._install(channel, transceiver.receiver)
            answer = await pc.createAnswer()
            await pc.setLocalDescription(answer)
            loop = asyncio.get_running_loop()
            if self._manifest_task is None:
                self._manifest_task = loop.create_task(self._manifest_loop())
            if self._keyframe_task is None and self.keyframe_interval > 0 and any(
                ch.spec.kind == "video" and ch.spec.store for ch in self._channels.values()
            ):
                self._keyframe_task = loop.create_task(self._keyframe_loop())
            answer_sdp = with_fir(without_remb(pc.localDescription.sdp), _fir_payload_types(sdp))
            # Which keyframe requests the sender agreed to, per video channel: PLI is in every
            # browser's offer and in aiortc's capabilities; FIR only where mirrored above.
            feedback = _video_feedback(answer_sdp)
            for transceiver in pc.getTransceivers():
                channel = self._channels[tracks[transceiver.mid]]
                if channel.spec.kind == "video" and channel.tap is not None:
                    fb = feedback.get(transceiver.mid, set())
                    channel.tap.pli = "nack pli" in fb
                    channel.tap.fir = "ccm fir" in fb
            return answer_sdp

    def pause(self, channel_ids: Iterable[str]) -> None:
        """Stop writing these channels and open a pause ``[now, null]`` in the manifest.

        What was captured before this moment is still written when it arrives later: a jitter
        buffer holds the last few packets until more come (aiortc's audio buffer keeps 4 frames),
        and a sender that stops its source before telling us may have frames in flight. The
        moment is placed on the channel's own capture clock (the last written frame's capture
        time plus the wall time since it arrived), which needs no agreement between the sender's
        clock and ours. The manifest's pause is on that clock too, as the pts are: written in our
        wall time, it was off from the pts by the sender's clock offset (a sender that ran ahead
        after a stall left frames inside the hole)."""
        now = time.time()
        for ch in self._lookup(channel_ids):
            if ch.paused:
                continue
            ch.paused = True
            at = self._capture_now(ch, now)
            ch.paused_after = at if ch.last_written is not None else None
            ch.entry.pauses.append([at, None])
        self._save_soon()

    @staticmethod
    def _capture_now(ch: _Channel, now: float) -> float:
        """``now`` on the channel's capture clock: the last written frame's capture time plus the
        wall time since it was written (``now`` itself before anything was written)."""
        if ch.last_written is None:
            return now
        return ch.last_written[0] + max(0.0, now - ch.last_written[1])

    def resume(self, channel_ids: Iterable[str]) -> None:
        """Close the open pause of these channels; video resumes at the next keyframe (PLI sent)."""
        now = time.time()
        for ch in self._lookup(channel_ids):
            if not ch.paused:
                continue
            ch.paused = False
            ch.paused_after = None
            ch.discontinuity = True
            if ch.entry.pauses and ch.entry.pauses[-1][1] is None:
                ch.entry.pauses[-1][1] = self._capture_now(ch, now)
            if ch.spec.kind == "video" and ch.tap is not None:
                ch.keyframe_since = time.monotonic()
                ch.last_keyframe = None
                self._ask_keyframe(ch)
        self._save_soon()

    async def close(self) -> SessionManifest:
        """Stop the connection, finalize every file and mark channels complete. Idempotent."""
        async with self._lock:
            if self._closed:
                return self.manifest
            self._closed = True
            if self._pc is not None:
                pc, self._pc = self._pc, None
                await pc.close()
            for task in (self._manifest_task, self._keyframe_task):
                if task is None:
                    continue
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            for task in list(self._tasks):
                task.cancel()
            await self.live.close()
            now = time.time()
            for ch in self._channels.values():
                if ch.buffer:
                    self._decide_clock(ch)
                if ch.paused and ch.entry.pauses and ch.entry.pauses[-1][1] is None:
                    ch.entry.pauses[-1][1] = self._capture_now(ch, now)
                    ch.paused = False
            for ch in self._channels.values():
                if ch.writer is not None:
                    await asyncio.to_thread(ch.writer.close)
                self._sync_entry(ch)
                ch.entry.complete = ch.entry.error is None
            await asyncio.to_thread(save_manifest, self.folder, self.manifest)
            return self.manifest

    # -- offer validation ---------------------------------------------------------------------
    def _validate_offer(self, sdp: str, tracks: dict[str, str]) -> list[tuple[str, str]]:
        if not isinstance(sdp, str) or not sdp.strip().startswith("v="):
            raise MalformedOfferError("offer SDP must be a string starting with 'v='")
        if not isinstance(tracks, dict):
            raise TrackMappingError("tracks must be an object mapping mid to channel_id")
        try:
            description = aiortc_sdp.SessionDescription.parse(sdp)
        except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError...
            raise MalformedOfferError(f"cannot parse offer SDP: {exc}") from exc
        media = [
            (m.kind, m.rtp.muxId) for m in description.media if m.kind in ("audio", "video")
        ]
        if not media:
            raise MalformedOfferError("offer has no audio or video m-line")
        if any(not mid for _, mid in media):
            raise MalformedOfferError("every m-line needs an a=mid (BUNDLE-style offer)")
        if len(media) > len(self._channels):
            raise TooManyTracksError(
                f"offer has {len(media)} media tracks but session {self.session_id} has "
                f"{len(self._channels)} channels"
            )
        bundled = {
            mid for group in description.group if group.semantic == "BUNDLE" for mid in group.items
        }
        unbundled = [mid for _, mid in media if mid not in bundled]
        if unbundled:
            raise MalformedOfferError(
                f"every m-line must be in one BUNDLE group (max-bundle); not bundled: {unbundled}"
            )
        offer_mids = {mid: kind for kind, mid in media}
        for mid, channel_id in tracks.items():
            if channel_id not in self._channels:
                raise UnknownChannelError(
                    f"tracks maps mid {mid!r} to {channel_id!r}, which is not a channel of session "
                    f"{self.session_id} (channels: {', '.join(self._channels)})"
                )
            if mid not in offer_mids:
                raise TrackMappingError(f"tracks names mid {mid!r}, which the offer does not have")
            kind = self._channels[channel_id].spec.kind
            if offer_mids[mid] != kind:
                raise TrackMappingError(
                    f"mid {mid!r} is {offer_mids[mid]} but channel {channel_id!r} is {kind}"
                )
        for mid in offer_mids:
            if mid not in tracks:
                raise TrackMappingError(f"offer m-line with mid {mid!r} is not mapped to a channel")
        values = list(tracks.values())
        dupes = {v for v in values if values.count(v) > 1}
        if dupes:
            raise TrackMappingError(f"channel(s) mapped to more than one track: {sorted(dupes)}")
        return media

    def _lookup(self, channel_ids: Iterable[str]) -> list[_Channel]:
        if isinstance(channel_ids, str):
            channel_ids = [channel_ids]
        out = []
        for cid in channel_ids:
            if cid not in self._channels:
                raise UnknownChannelError(
                    f"{cid!r} is not a channel of session {self.session_id}"
                )
            out.append(self._channels[cid])
        return out

    # -- media path (event-loop thread) -------------------------------------------------------
    def _install(self, ch: _Channel, receiver: RTCRtpReceiver) -> None:
        ch.receiver = receiver
        ch.tap = install_tap(
            receiver,
            on_frame=lambda f, ch=ch: self._frame(ch, f),
            on_sender_report=lambda r, ch=ch: self._sender_report(ch, r),
        )
        if receiver.track is not None:
            self.live.bind(ch.spec.channel_id, ch.tap, receiver.track)

    def _sender_report(self, ch: _Channel, report: SenderReport) -> None:
        if ch.clock is None:
            return  # no frame yet; the first reports of a connection come after media anyway
        ch.clock.add_sender_report(report)
        if ch.buffer and ch.clock.source == "rtcp":
            self._decide_clock(ch)

    def _frame(self, ch: _Channel, f: TappedFrame) -> None:
        if ch.clock is None or not ch.connection_started:
            if ch.clock is not None and ch.buffer:
                self._decide_clock(ch)  # write what the old connection left waiting
            # A new connection has a new RTP clock: map it afresh; files keep their start_time.
            ch.clock = CaptureClock(f.clock_rate)
            ch.clock_decided = False
            ch.connection_started = True
            if ch.spec.kind == "video":
                ch.keyframe_since = time.monotonic()
                ch.last_keyframe = None
                self._ask_keyframe(ch)
        ch.clock.observe_frame(f.timestamp, f.arrival, f.origin)
        if ch.spec.kind == "video" and ch.spec.store and is_keyframe(f.codec, f.data):
            self._keyframe_seen(ch)
        if not ch.media_seen:
            ch.media_seen = True
            ch.entry.codec = ch.entry.codec or f.codec  # informative for ephemeral channels too
            self._notify(self._on_media, ch.spec.channel_id)
        if ch.paused and not (ch.paused_after is not None and ch.clock_decided
                              and ch.clock.to_time(f.timestamp) <= ch.paused_after):
            ch.discontinuity = True
            return
        if not ch.spec.store:
            return  # ephemeral: never written; live audio is decoded by aiortc when wanted
        if ch.codec is None:
            ch.codec = f.codec
        elif ch.codec != f.codec:
            ch.entry.error = f"codec changed from {ch.codec} to {f.codec}; frames dropped"
            return
        disc = f.discontinuity or ch.discontinuity
        ch.discontinuity = False
        if not ch.clock_decided:
            if not ch.buffer:
                ch.buffer_since = f.arrival
            ch.buffer.append((f.timestamp, f.data, disc))
            if ch.clock.source == "rtcp" or f.arrival - ch.buffer_since >= self.sr_wait:
                self._decide_clock(ch)
            return
        self._submit(ch, f.timestamp, f.data, disc)

    def _decide_clock(self, ch: _Channel) -> None:
        """Fix the channel's clock source and write what waited for it."""
        assert ch.clock is not None
        source = ch.clock.lock()
        ch.clock_decided = True
        if ch.writer is None:
            ch.entry.clock = source
        buffered, ch.buffer = ch.buffer, []
        for ts, data, disc in buffered:
            self._submit(ch, ts, data, disc)

    def _submit(self, ch: _Channel, ts: int, data: bytes, disc: bool) -> None:
        assert ch.clock is not None and ch.codec is not None
        if ch.writer is None:
            writer = ChannelWriter(
                self.folder / file_name_for(ch.spec.channel_id, ch.spec.kind), ch.codec
            )
            ch.writer = InlineWriter(writer, name=f"writer-{ch.spec.channel_id}")
            ch.entry.codec = ch.codec
        captured = ch.clock.to_time(ts)
        ch.writer.submit(data, captured, disc)
        ch.last_written = (captured, time.time())

    # -- keyframe cadence (event-loop thread) -------------------------------------------------
    def _keyframe_seen(self, ch: _Channel) -> None:
        now = time.monotonic()
        ch.entry.keyframes += 1
        if ch.last_keyframe is not None and not ch.paused:
            gap = round(now - ch.last_keyframe, 3)
            if ch.entry.max_keyframe_gap is None or gap > ch.entry.max_keyframe_gap:
                ch.entry.max_keyframe_gap = gap
        ch.last_keyframe = now
        ch.keyframe_since = now
        ch.keyframe_unanswered = 0

    def _ask_keyframe(self, ch: _Channel) -> None:
        """Send one keyframe request for ``ch`` (counted in the manifest once it is sent)."""
        tap = ch.tap
        if tap is None:
            return
        escalate = ch.keyframe_unanswered > 0
        ch.keyframe_asked = time.monotonic()
        ch.keyframe_unanswered += 1

        async def ask() -> None:
            if await tap.request_keyframe(escalate=escalate):
                ch.entry.keyframe_requests += 1

        self._spawn(ask())

    def keyframes_due(self, now: float) -> list[_Channel]:
        """Stored, connected, unpaused video channels whose sender should be asked now."""
        interval = self.keyframe_interval
        retry = min(interval, 1.0)
        due = []
        for ch in self._channels.values():
            if (ch.spec.kind != "video" or not ch.spec.store or ch.tap is None or ch.paused
                    or not ch.connection_started or ch.keyframe_since is None):
                continue
            if now - ch.keyframe_since < interval:
                continue
            if ch.keyframe_asked is not None and now - ch.keyframe_asked < retry:
                continue
            due.append(ch)
        return due

    async def _keyframe_loop(self) -> None:
        """Ask for keyframes on the cadence; a 4 Hz check is precise enough for a 1 s slack."""
        tick = min(0.25, self.keyframe_interval / 4)
        while True:
            await asyncio.sleep(tick)
            for ch in self.keyframes_due(time.monotonic()):
                self._ask_keyframe(ch)

    # -- state, callbacks, manifest -----------------------------------------------------------
    def _connection_state(self, pc: RTCPeerConnection) -> None:
        if pc is not self._pc and not (self._closed and pc.connectionState == "closed"):
            return  # an old connection replaced by a reconnect
        state = pc.connectionState
        self.state = state
        if state in CONNECTION_STATES:
            self._notify(self._on_state, state)

    def _notify(self, callback: Optional[Callback], *args: Any) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                self._spawn(result)
        except Exception:  # noqa: BLE001 - the owner's bug must not break ingest
            logger.exception("ingest callback %r failed", callback)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _sync_entry(self, ch: _Channel) -> None:
        if ch.writer is None:
            return
        w = ch.writer.writer
        e = ch.entry
        if w.opened or w.frames:
            e.file = w.path.name
        e.codec = w.codec
        e.start_time = w.start_time
        e.first_frame_at = w.first_frame_at
        e.last_frame_at = w.last_frame_at
        e.frames = w.frames
        e.dropped_frames = w.dropped
        e.dts_clamps = w.clamps
        e.gaps = [list(g) for g in list(w.gaps)]
        if ch.clock is not None and ch.clock_decided and ch.clock.rtcp_offset is not None:
            if e.clock == "rtcp" or e.rtcp_offset is None:
                e.rtcp_offset = round(ch.clock.rtcp_offset, 6)
        if w.width:
            e.width, e.height = w.width, w.height
        if ch.writer.error is not None:
            e.error = f"writer failed: {ch.writer.error}"

    def _save_soon(self) -> None:
        try:
            save_manifest(self.folder, self.manifest)
        except OSError:
            logger.exception("saving manifest of %s failed", self.session_id)

    async def _manifest_loop(self) -> None:
        while True:
            await asyncio.sleep(self.manifest_interval)
            now = time.time()
            for ch in self._channels.values():
                if ch.buffer and ch.clock is not None and now - ch.buffer_since >= self.sr_wait:
                    self._decide_clock(ch)  # the sender went quiet while we waited for a report
                self._sync_entry(ch)
            try:
                await asyncio.to_thread(save_manifest, self.folder, self.manifest)
            except OSError:
                logger.exception("saving manifest of %s failed", self.session_id)


def without_remb(sdp: str) -> str:
    """The answer minus abs-send-time and goog-remb for video.

    aiortc's receive-side bandwidth estimate (REMB, from abs-send-time) collapses whenever a sender
    goes quiet, e.g. a paused browser track sending tiny black frames, and the sender then crawls
    at a few frames a second long after resuming. We store what arrives and never need the
    sender to slow down on a LAN, so the sender is left to its own loss-based control.
    """
    out, video = [], False
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            video = line.startswith("m=video")
        if video and (line.startswith("a=rtcp-fb:") and line.endswith(" goog-remb")
                      or line.startswith("a=extmap:") and line.endswith("abs-send-time")):
            continue
        out.append(line)
    return "\r\n".join(out)


def _fir_payload_types(sdp: str) -> dict[str, set[int]]:
    """mid → payload types of the offer's video m-line that carry ``a=rtcp-fb:<pt> ccm fir``
    (``*`` counts for every payload type)."""
    out: dict[str, set[int]] = {}
    for mid, lines in _sections(sdp.replace("\r\n", "\n").split("\n")):
        if mid is None or not lines or not lines[0].startswith("m=video"):
            continue
        pts, fir = set(), set()
        for line in lines:
            line = line.strip()
            if line.startswith("a=rtpmap:"):
                pt = line[9:].split(" ", 1)[0]
                if pt.isdigit():
                    pts.add(int(pt))
            elif line.startswith("a=rtcp-fb:") and line.split(" ", 1)[-1].strip() == "ccm fir":
                which = line[10:].split(" ", 1)[0]
                if which == "*":
                    fir |= pts | {-1}
                elif which.isdigit():
                    fir.add(int(which))
        if -1 in fir:
            fir = pts
        if fir & pts:
            out[mid] = fir & pts
    return out


def with_fir(sdp: str, fir: dict[str, set[int]]) -> str:
    """The answer with ``a=rtcp-fb:<pt> ccm fir`` for its payload types (per mid) whose offer
    carried it: aiortc's capabilities lack FIR, so it never answers it on its own, and a
    sender may honour FIR where it does not honour PLI (RFC 5104)."""
    if not fir:
        return sdp
    sections = _sections(sdp.split("\r\n"))
    out: list[str] = []
    for mid, lines in sections:
        for line in lines:
            out.append(line)
            if mid in fir and line.startswith("a=rtpmap:"):
                pt = line[9:].split(" ", 1)[0]
                if pt.isdigit() and int(pt) in fir[mid]:
                    out.append(f"a=rtcp-fb:{pt} ccm fir")
    return "\r\n".join(out)


def _sections(lines: list[str]) -> list[tuple[Optional[str], list[str]]]:
    """SDP lines split into the session part and m-sections, each with its ``a=mid``."""
    sections: list[tuple[Optional[str], list[str]]] = [(None, [])]
    for line in lines:
        if line.startswith("m="):
            sections.append((None, []))
        mid, body = sections[-1]
        body.append(line)
        if line.startswith("a=mid:"):
            sections[-1] = (line[6:].strip(), body)
    return sections


def _video_feedback(sdp: str) -> dict[str, set[str]]:
    """mid → the rtcp-fb values (``nack pli``, ``ccm fir``, …) of a video m-section's codecs."""
    out: dict[str, set[str]] = {}
    for mid, lines in _sections(sdp.replace("\r\n", "\n").split("\n")):
        if mid is None or not lines or not lines[0].startswith("m=video"):
            continue
        out[mid] = {
            line.split(" ", 1)[1].strip()
            for line in lines if line.startswith("a=rtcp-fb:") and " " in line
        }
    return out


def _preferred_codecs(kind: str) -> list:
    """Receiver capabilities in our order of preference (+ RTX for video, to repair loss)."""
    caps = RTCRtpReceiver.getCapabilities(kind).codecs
    order = VIDEO_CODEC_PREFERENCE if kind == "video" else AUDIO_CODEC_PREFERENCE
    out = []
    for mime in order:
        out.extend(c for c in caps if c.mimeType.lower() == mime.lower())
    if kind == "video":
        out.extend(c for c in caps if c.mimeType.lower() == "video/rtx")
    return out
