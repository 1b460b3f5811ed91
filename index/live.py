"""Live transcription of a channel's decoded audio, in memory, with ~1–2 s latency.

How: a consumer of ``reeldb.capture.live.LiveHub`` (anything with ``async on_audio(channel_id,
frame)``). Each 48 kHz frame is resampled to 16 kHz mono into a growable in-memory buffer; an
energy voice-activity detector with an adaptive noise floor finds where speech starts and where
it pauses. While someone speaks, the utterance so far is re-decoded about every ``step`` seconds
and emitted as interim text (``is_final`` false); at a pause of ``pause`` seconds (or after
``max_segment`` seconds without one) the utterance is decoded once more with beam search, emitted
as final, and dropped from memory. Nothing touches disk. A machine that cannot keep up decodes
greedily while finals wait, and drops the oldest once ``max_backlog`` seconds of speech wait:
memory and lateness stay bounded (the drop is logged and counted in ``dropped_seconds``).

Why re-decode the utterance instead of streaming tokens: whisper has no streaming decoder, and a
short utterance is cheap to decode because only it and ten seconds of silence after it are encoded,
not whisper's whole 30 s window (``utterance.py``: about 0.5 CPU-s on tiny.en for 4 s of speech,
0.46x the 30 s window's, with no loss of accuracy measured); cutting at pauses keeps words whole
(``max_segment`` stays well under 30 s).

Why energy VAD and not Silero here: it costs microseconds per frame on the event loop (on_audio
is awaited inline by the hub and must be quick). It assumes a reasonably clean microphone; in
steady noise the adaptive floor keeps it working, babble will be treated as speech (whisper then
returns little or nothing and no final is emitted).

Decoding runs in this transcriber's own single worker thread, never on the event loop; one
decode at a time per transcriber, interims are skipped while one is running, finals are queued.

Events, to ``emit(channel_id, event)`` (a function or coroutine function)::

    {"text": str, "is_final": bool, "start": int, "end": int}   # start/end: ms since the epoch

Times come from a wall-clock anchor taken at the channel's first frame plus the samples since.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional, Union

import av
import numpy as np

from . import models, utterance
from .transcribe import whisper_language

logger = logging.getLogger(__name__)

SR = 16000
BLOCK = 320  # 20 ms VAD blocks at 16 kHz
Emit = Callable[[str, dict[str, Any]], Union[None, Awaitable[None]]]


@dataclass
class _Job:
    audio: np.ndarray
    start: float  # epoch seconds
    end: float
    final: bool
    queued_at: float


@dataclass
class _Stream:
    channel_id: str
    resampler: Any
    anchor: Optional[float] = None  # epoch seconds of sample index 0
    buf: np.ndarray = field(default_factory=lambda: np.zeros(SR * 4, np.float32))
    base: int = 0  # absolute sample index of buf[0]
    n: int = 0  # valid samples in buf
    vad_pos: int = 0  # absolute index of next sample to classify
    noise: float = 1e-3  # running noise-floor RMS
    in_speech: bool = False
    seg_start: int = 0
    last_voice: int = 0
    voiced: int = 0  # voiced samples in current segment
    last_interim: int = 0
    queue: Optional[asyncio.Queue] = None
    worker: Optional[asyncio.Task] = None
    busy: bool = False
    pending: float = 0.0  # seconds of audio in queued finals (the backlog)

    @property
    def total(self) -> int:
        return self.base + self.n

    def append(self, x: np.ndarray) -> None:
        if self.n + len(x) > len(self.buf):
            cap = max(len(self.buf) * 2, self.n + len(x))
            nb = np.zeros(cap, np.float32)
            nb[: self.n] = self.buf[: self.n]
            self.buf = nb
        self.buf[self.n : self.n + len(x)] = x
        self.n += len(x)

    def slice(self, lo: int, hi: int) -> np.ndarray:
        lo, hi = max(lo, self.base), min(hi, self.total)
        return self.buf[lo - self.base : hi - self.base].copy()

    def drop_before(self, idx: int) -> None:
        k = min(max(0, idx - self.base), self.n)
        if k:
            self.buf[: self.n - k] = self.buf[k : self.n]
            self.n -= k
            self.base += k


class LiveTranscriber:
    """An ``AudioConsumer`` that emits interim and final transcript events per channel."""

    def __init__(
        self,
        emit: Emit,
        *,
        model_spec: Optional[str] = None,
        language: Optional[str] = "en",
        step: float = 1.0,
        pause: float = 0.6,
        max_segment: float = 15.0,
        min_speech: float = 0.25,
        interim: bool = True,
        threshold_db: float = -50.0,
        clock: Callable[[], float] = time.time,
        executor: Optional[concurrent.futures.Executor] = None,
        max_backlog: float = 30.0,
    ) -> None:
        self.emit = emit
        self.model_spec = model_spec
        self.language = whisper_language(language)
        self.step = step
        self.pause = pause
        self.max_segment = max_segment
        self.min_speech = min_speech
        self.interim = interim
        self.threshold = 10 ** (threshold_db / 20)
        self.clock = clock
        self.max_backlog = max_backlog
        #: Seconds of speech never transcribed because decoding fell ``max_backlog`` behind.
        self.dropped_seconds = 0.0
        self._streams: dict[str, _Stream] = {}
        # A host that owns its threads (the server) passes its executor; alone, we own one.
        self._owns_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-whisper")
        self._closed = False
        #: (emit time − end of the utterance's audio as placed on the clock), seconds, per final.
        self.final_latencies: list[float] = []

    # -- the consumer seam ---------------------------------------------------------------------
    async def on_audio(self, channel_id: str, frame: av.AudioFrame) -> None:
        if self._closed:
            return
        st = self._streams.get(channel_id)
        if st is None:
            st = self._streams[channel_id] = _Stream(
                channel_id, av.AudioResampler(format="flt", layout="mono", rate=SR)
            )
        now = self.clock()
        if st.anchor is None:
            st.anchor = now - frame.samples / (frame.sample_rate or 48000)
        elif not st.in_speech and now - (st.anchor + st.total / SR) > 1.0:
            # The stream paused (mute, reconnect): re-anchor so times stay on the wall clock.
            st.anchor = now - st.total / SR
        for out in st.resampler.resample(_unstamped(frame)):
            st.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        self._vad(st)

    async def flush(self, channel_id: Optional[str] = None) -> None:
        """Finalise any speech in progress (the track ended) and wait for pending decodes."""
        for st in [self._streams[channel_id]] if channel_id in self._streams else (
            list(self._streams.values()) if channel_id is None else []
        ):
            if st.in_speech:
                self._finalise(st, st.total)
            if st.queue is not None:
                await st.queue.join()

    async def aclose(self) -> None:
        """Stop workers and the decode thread (pending speech is dropped; call flush first to keep it)."""
        self._closed = True
        for st in self._streams.values():
            if st.worker:
                st.worker.cancel()
                try:
                    await st.worker
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- voice activity and endpointing (pure arithmetic on the buffer) --------------------------
    def _vad(self, st: _Stream) -> None:
        while st.vad_pos + BLOCK <= st.total:
            blk = st.slice(st.vad_pos, st.vad_pos + BLOCK)
            rms = float(np.sqrt(np.mean(blk * blk)) + 1e-9)
            voiced = rms > max(self.threshold, st.noise * 4.0)
            if not voiced:
                # follow the floor down fast and up slowly
                st.noise = rms if rms < st.noise else st.noise * 0.995 + rms * 0.005
            pos_end = st.vad_pos + BLOCK
            if voiced:
                if not st.in_speech:
                    st.in_speech = True
                    st.seg_start = max(st.base, st.vad_pos - int(0.2 * SR))
                    st.voiced = 0
                    st.last_interim = st.vad_pos
                st.last_voice = pos_end
                st.voiced += BLOCK
            st.vad_pos = pos_end
            if st.in_speech:
                if pos_end - st.last_voice >= self.pause * SR:
                    self._finalise(st, min(st.total, st.last_voice + int(0.2 * SR)))
                elif pos_end - st.seg_start >= self.max_segment * SR:
                    self._finalise(st, pos_end)
                elif self.interim and pos_end - st.last_interim >= self.step * SR and not st.busy \
                        and (st.queue is None or st.queue.empty()):
                    st.last_interim = pos_end
                    self._submit(st, st.seg_start, pos_end, final=False)
        if not st.in_speech:
            st.drop_before(st.vad_pos - int(0.3 * SR))  # keep a little pre-roll only

    def _finalise(self, st: _Stream, end: int) -> None:
        if st.voiced >= self.min_speech * SR:
            self._submit(st, st.seg_start, end, final=True)
        st.in_speech = False
        st.voiced = 0
        st.drop_before(end)

    def _submit(self, st: _Stream, lo: int, hi: int, *, final: bool) -> None:
        assert st.anchor is not None
        job = _Job(st.slice(lo, hi), st.anchor + lo / SR, st.anchor + hi / SR, final, time.monotonic())
        if st.queue is None:
            st.queue = asyncio.Queue()
            st.worker = asyncio.get_running_loop().create_task(self._work(st), name=f"live-asr-{st.channel_id}")
        if final:
            self._shed(st, job.end - job.start)
            st.pending += job.end - job.start
        st.queue.put_nowait(job)

    def _shed(self, st: _Stream, incoming: float) -> None:
        """Keep the backlog under ``max_backlog`` seconds of audio by dropping its oldest finals.

        Why drop: when the machine cannot decode as fast as people speak (many sessions, busy
        cores), the queue would grow for as long as the meeting lasts, holding its audio in memory
        and making "live" text minutes late. A live transcript is for now; a stored channel is
        transcribed in full from its export anyway. What is dropped is logged and counted."""
        assert st.queue is not None
        shed = 0.0
        while st.pending + incoming > self.max_backlog and not st.queue.empty():
            old: _Job = st.queue.get_nowait()
            st.queue.task_done()
            if old.final:
                st.pending -= old.end - old.start
                shed += old.end - old.start
        if shed:
            self.dropped_seconds += shed
            logger.warning("live transcription of %s is %.0f s behind; dropped %.1f s of speech",
                           st.channel_id, st.pending + incoming, shed)

    # -- decoding (worker thread) -------------------------------------------------------------
    async def _work(self, st: _Stream) -> None:
        loop = asyncio.get_running_loop()
        assert st.queue is not None
        while True:
            job: _Job = await st.queue.get()
            if job.final:
                st.pending -= job.end - job.start
            try:
                if not job.final and not st.in_speech:
                    continue  # the utterance already ended: its final is queued
                st.busy = True
                # Behind (more finals waiting): greedy decoding, ~3x cheaper than beam search.
                careful = job.final and st.queue.empty()
                text = await loop.run_in_executor(self._executor, self._decode, job.audio, careful)
                if not text:
                    continue
                event = {"text": text, "is_final": job.final, "start": int(round(job.start * 1000)),
                         "end": int(round(job.end * 1000))}
                if job.final:
                    self.final_latencies.append(self.clock() - job.end)
                res = self.emit(st.channel_id, event)
                if inspect.isawaitable(res):
                    await res
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one failed decode must not end live transcription
                logger.exception("live transcription failed on %s", st.channel_id)
            finally:
                st.busy = False
                st.queue.task_done()

    def _decode(self, audio: np.ndarray, careful: bool) -> str:
        """The utterance's text; a window whisper thinks is more likely no speech than speech
        (no-speech probability 0.8 or more) says nothing, whatever words it made of it."""
        heard = utterance.decode(models.get_whisper(self.model_spec), audio, language=self.language,
                                 beam_size=5 if careful else 1)
        return heard.text if heard.no_speech_prob < 0.8 else ""


def _unstamped(frame: av.AudioFrame) -> av.AudioFrame:
    """The same samples without a pts: the resampler must not try to fill or trim timestamp gaps
    (we own the timeline), and the hub's frame is shared with other consumers, so copy."""
    if frame.pts is None:
        return frame
    arr = frame.to_ndarray()
    copy = av.AudioFrame.from_ndarray(arr, format=frame.format.name, layout=frame.layout.name)
    copy.sample_rate = frame.sample_rate
    return copy
