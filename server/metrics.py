"""Prometheus metrics at ``/metrics``: read from the server's state at scrape time.

One custom collector on a registry the :class:`Metrics` service owns (never prometheus-client's
global default registry): every figure is read when Prometheus scrapes, from the database (sessions,
jobs, webhook deliveries, retention runs), the live ingests (frames, drops, gaps, keyframes, bytes
on disk) and the file system (disk free). Nothing else in the server keeps a counter for it.
Ingest workers (``REELDB_INGEST_WORKERS``) appear as they last reported: up, sessions, CPU, bitrate;
their sessions' channel counters come from those reports too.

Who may scrape: with ``REELDB_METRICS_TOKEN`` set, a request with ``Authorization: Bearer
<token>`` (or an API key); without it, loopback clients freely and others with an API key.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .capture_runtime import CaptureRuntime
from .ingest.backend import WorkerStatus
from .database import Conn, Database, rows
from .jobs import LANES
from .runtime import Runtime
from .settings import Settings
from .storage import headroom

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Job duration buckets, seconds (an import of a few MB to a long render).
DURATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
SESSION_STATUSES = ("created", "starting", "active", "stopping", "stopped", "exported", "failed")


class ServerCollector(Collector):
    """Reads everything at collect time; ``live`` is the ingest snapshot taken on the event loop."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.live: dict[str, list[dict[str, Any]]] = {}
        self.workers: list[WorkerStatus] = []

    def collect(self) -> Iterator[Metric]:
        yield from self._sessions()
        yield from self._ingest()
        yield from self._workers()
        yield from self._jobs()
        yield from self._webhooks()
        yield from self._retention()
        yield from self._disk()

    def _sessions(self) -> Iterator[Metric]:
        counts = dict(self.db.read_sync(lambda conn: [
            (r["status"], r["n"]) for r in rows(conn, "select status, count(*) as n from capture_sessions group by status")]))
        g = GaugeMetricFamily("reeldb_capture_sessions", "Capture sessions by status", labels=["status"])
        for status in sorted(set(SESSION_STATUSES) | set(counts)):
            g.add_metric([status], counts.get(status, 0))
        yield g
        yield GaugeMetricFamily("reeldb_ingest_sessions", "Sessions with a live WebRTC ingest (here or on an ingest worker)",
                                value=len(self.live))

    def _ingest(self) -> Iterator[Metric]:
        labels = ["session_id", "channel_id"]
        families = {
            "bytes": CounterMetricFamily("reeldb_ingest_bytes", "Bytes a stored channel's file holds on disk", labels=labels),
            "frames": CounterMetricFamily("reeldb_ingest_frames", "Frames written of a stored channel", labels=labels),
            "dropped": CounterMetricFamily(
                "reeldb_ingest_dropped_frames",
                "Frames received but not written (video waiting for a keyframe after a loss, a codec change)",
                labels=labels),
            "gaps": CounterMetricFamily("reeldb_ingest_lost_gaps",
                                        "Losses: holes in a channel where frames never arrived", labels=labels),
            "keyframes": CounterMetricFamily("reeldb_ingest_keyframes", "Keyframes received", labels=labels),
            "keyframe_requests": CounterMetricFamily("reeldb_ingest_keyframe_requests",
                                                     "Keyframe requests (PLI/FIR) sent to the sender", labels=labels),
            "packets_received": CounterMetricFamily("reeldb_ingest_rtp_packets",
                                                    "RTP packets received (aiortc's receiver statistics)", labels=labels),
            "packets_lost": CounterMetricFamily("reeldb_ingest_rtp_packets_lost",
                                                "RTP packets lost on the way (sequence gaps never filled)", labels=labels),
        }
        bitrate = GaugeMetricFamily("reeldb_ingest_bitrate_bits_per_second",
                                    "Average bitrate of a stored channel since its first frame "
                                    "(rate(reeldb_ingest_bytes_total[1m]) * 8 for a window)", labels=labels)
        shed = CounterMetricFamily("reeldb_live_speech_shed_seconds",
                                   "Seconds of a channel's speech its live transcripts (and the live indexes on "
                                   "them) dropped to keep up under load, stored or ephemeral", labels=labels)
        shed_frames = CounterMetricFamily("reeldb_live_screen_shed_frames",
                                          "Settled pictures of a display its live screen-text reader skipped "
                                          "(a newer one was read instead) to keep up under load, stored or ephemeral",
                                          labels=labels)
        for session_id, channels in sorted(self.live.items()):
            for ch in channels:
                if ch["kind"] == "audio":
                    shed.add_metric([session_id, ch["channel_id"]], float(ch.get("shed_seconds") or 0.0))
                else:
                    shed_frames.add_metric([session_id, ch["channel_id"]], float(ch.get("shed_frames") or 0))
                if not ch["store"]:
                    continue  # ephemeral channels are never written: nothing else to count
                key = [session_id, ch["channel_id"]]
                size = _size(ch["path"])
                families["bytes"].add_metric(key, size)
                for name in ("frames", "dropped", "gaps", "keyframes", "keyframe_requests", "packets_received",
                             "packets_lost"):
                    families[name].add_metric(key, ch[name])
                span = (ch["last_frame_at"] or 0) - (ch["first_frame_at"] or 0)
                bitrate.add_metric(key, size * 8 / span if span > 0 else 0.0)
        yield from families.values()
        yield bitrate
        yield shed
        yield shed_frames

    def _workers(self) -> Iterator[Metric]:
        labels = ["worker"]
        up = GaugeMetricFamily("reeldb_ingest_worker_up", "1 while an ingest worker reports (heartbeat within "
                               "REELDB_MEDIA_TIMEOUT), 0 once it is declared down", labels=labels)
        sessions = GaugeMetricFamily("reeldb_ingest_worker_sessions", "Capture sessions an ingest worker hosts",
                                     labels=labels)
        cpu = GaugeMetricFamily("reeldb_ingest_worker_cpu", "CPU of an ingest worker process over its last "
                                "report, as a fraction of one core", labels=labels)
        bitrate = GaugeMetricFamily("reeldb_ingest_worker_bitrate_bits_per_second",
                                    "Bits an ingest worker wrote for stored channels over its last report",
                                    labels=labels)
        for w in self.workers:
            up.add_metric([w.worker_id], 1 if w.up else 0)
            sessions.add_metric([w.worker_id], w.sessions)
            cpu.add_metric([w.worker_id], w.cpu)
            bitrate.add_metric([w.worker_id], w.bitrate)
        yield from (up, sessions, cpu, bitrate)

    def _jobs(self) -> Iterator[Metric]:
        def read(conn: Conn) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
            states = list(rows(conn, "select lane, status, count(*) as n from jobs group by lane, status"))
            ended = list(rows(conn, "select kind, status, count(*) as n from jobs "
                                    "where status in ('done', 'failed') group by kind, status"))
            cases = ", ".join(f"sum(case when d <= {b} then 1 else 0 end) as b{i}"
                              for i, b in enumerate(DURATION_BUCKETS))
            durations = list(rows(conn, f"select lane, count(*) as n, sum(d) as total, {cases} from "
                                        "(select lane, max(0, finished_at - started_at) as d from jobs "
                                        "where status in ('done', 'failed') and started_at is not null "
                                        "and finished_at is not null) group by lane"))
            return states, ended, durations

        states, ended, durations = self.db.read_sync(read)
        by_lane = {(r["lane"], r["status"]): r["n"] for r in states}
        depth = GaugeMetricFamily("reeldb_job_queue_depth", "Jobs waiting in each lane", labels=["lane"])
        running = GaugeMetricFamily("reeldb_jobs_running", "Jobs running in each lane", labels=["lane"])
        for lane in LANES:
            depth.add_metric([lane], by_lane.get((lane, "queued"), 0))
            running.add_metric([lane], by_lane.get((lane, "running"), 0))
        yield depth
        yield running
        total = CounterMetricFamily("reeldb_jobs_finished", "Jobs that ended, by kind and outcome",
                                    labels=["kind", "status"])
        for r in ended:
            total.add_metric([r["kind"], r["status"]], r["n"])
        yield total
        hist = HistogramMetricFamily("reeldb_job_duration_seconds",
                                     "Wall time of a job's last attempt, from claim to end", labels=["lane"])
        for r in durations:
            buckets = [(_le(b), r[f"b{i}"] or 0) for i, b in enumerate(DURATION_BUCKETS)] + [("+Inf", r["n"])]
            hist.add_metric([r["lane"]], buckets, sum_value=r["total"] or 0.0)
        yield hist
        if self.settings.jobs == "celery":
            yield from self._job_workers()

    def _job_workers(self) -> Iterator[Metric]:
        """``reeldb worker jobs`` processes, from the heartbeat each keeps in Redis (REELDB_JOBS=celery)."""
        import redis

        from .jobs.celery import job_workers

        try:
            workers, up = job_workers(self.settings), 1
        except redis.RedisError:
            workers, up = [], 0
        yield GaugeMetricFamily("reeldb_jobs_broker_up", "Whether Redis (the jobs broker) answered", value=up)
        yield GaugeMetricFamily("reeldb_job_workers", "Job workers alive (a heartbeat within 15 s)", value=len(workers))
        running = GaugeMetricFamily("reeldb_job_worker_running_jobs", "Jobs a job worker runs now", labels=["worker"])
        ended = CounterMetricFamily("reeldb_job_worker_jobs", "Jobs a job worker ended since it started",
                                    labels=["worker", "status"])
        for w in workers:
            running.add_metric([w["name"]], len(w.get("running", {})))
            ended.add_metric([w["name"], "done"], w.get("done", 0))
            ended.add_metric([w["name"], "failed"], w.get("failed", 0))
        yield running
        yield ended

    def _webhooks(self) -> Iterator[Metric]:
        def read(conn: Conn) -> list[dict[str, Any]]:
            return list(rows(conn, "select status, count(*) as n, coalesce(sum(attempts), 0) as attempts "
                                   "from deliveries group by status"))

        stats = self.db.read_sync(read)
        attempts = sum(r["attempts"] for r in stats)
        delivered = sum(r["n"] for r in stats if r["status"] == "delivered")
        yield CounterMetricFamily("reeldb_webhook_attempts", "Webhook delivery attempts", value=attempts)
        yield CounterMetricFamily("reeldb_webhook_failed_attempts",
                                  "Webhook attempts that failed (error or non-2xx answer)", value=attempts - delivered)
        g = GaugeMetricFamily("reeldb_webhook_deliveries", "Webhook deliveries by state (pending, delivered, failed)",
                              labels=["status"])
        for status in ("pending", "delivered", "failed"):
            g.add_metric([status], next((r["n"] for r in stats if r["status"] == status), 0))
        yield g

    def _retention(self) -> Iterator[Metric]:
        def read(conn: Conn) -> dict[str, Any]:
            return dict(next(iter(rows(
                conn, "select count(*) as runs, max(finished_at) as last, "
                      "coalesce(sum(json_extract(result, '$.media_deleted')), 0) as media, "
                      "coalesce(sum(json_extract(result, '$.raw_deleted')), 0) as raw, "
                      "coalesce(sum(json_extract(result, '$.bytes_freed')), 0) as freed "
                      "from jobs where kind = 'retention' and status = 'done'"))))

        r = self.db.read_sync(read)
        deleted = CounterMetricFamily("reeldb_retention_deleted_assets",
                                      "Assets deleted by retention (media: a session's whole media after "
                                      "REELDB_RETENTION_DAYS; raw: raw channel assets after REELDB_RAW_RETENTION_DAYS)",
                                      labels=["scope"])
        deleted.add_metric(["media"], r["media"])
        deleted.add_metric(["raw"], r["raw"])
        yield deleted
        yield CounterMetricFamily("reeldb_retention_freed_bytes", "Bytes retention removed from disk", value=r["freed"])
        yield CounterMetricFamily("reeldb_retention_runs", "Retention jobs completed", value=r["runs"])
        yield GaugeMetricFamily("reeldb_retention_last_run_timestamp_seconds",
                                "When the last retention job ended (0: never)", value=r["last"] or 0)

    def _disk(self) -> Iterator[Metric]:
        usage = shutil.disk_usage(self.settings.data_dir)
        yield GaugeMetricFamily("reeldb_data_dir_free_bytes", "Free bytes on the data dir's file system",
                                value=usage.free)
        yield GaugeMetricFamily("reeldb_data_dir_size_bytes", "Size of the data dir's file system", value=usage.total)
        yield GaugeMetricFamily("reeldb_media_root_headroom_bytes",
                                "Free bytes on the media root above REELDB_DISK_FLOOR_MB (below 0: recordings stop "
                                "and uploads are refused)",
                                value=headroom(self.settings.media_root_dir, self.settings.disk_floor_mb))


class Metrics:
    """The registry and its collector; :meth:`scrape` is the exposition text."""

    def __init__(self, db: Database, settings: Settings, capture: CaptureRuntime, runtime: Runtime) -> None:
        self.settings = settings
        self.capture = capture
        self.runtime = runtime
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = ServerCollector(db, settings)
        self.registry.register(self.collector)
        self._lock = asyncio.Lock()

    async def scrape(self) -> bytes:
        async with self._lock:  # one snapshot per scrape
            self.collector.live = await self.capture.live_stats()  # loop-owned state, read on the loop
            self.collector.workers = self.capture.workers()
            return await self.runtime.io(generate_latest, self.registry)


def _size(path: str | None) -> int:
    if not path:
        return 0
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _le(bound: float) -> str:
    return str(float(bound))


def is_loopback(host: str | None) -> bool:
    return bool(host) and (host in ("127.0.0.1", "::1", "localhost") or str(host).startswith("127."))


__all__ = ["CONTENT_TYPE", "Metrics", "ServerCollector", "is_loopback"]
