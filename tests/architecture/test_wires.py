"""What crosses a process boundary encodes the values our stages produce: numpy scalars (a live
transcript item's times, a compute part's durations) travel as the numbers they hold."""

from __future__ import annotations

import msgspec
import numpy as np

from reeldb.server.ingest import wire as ingest_wire
from reeldb.server.jobs import wire as job_wire


def test_an_ingest_event_with_numpy_numbers_is_sent_and_read_back():
    item = {"text": "tomato", "start": np.float64(1.25), "end": np.float32(2.5), "is_final": True}
    sent = ingest_wire.to_builtins(ingest_wire.Events("w1", [ingest_wire.TranscriptItem("cap-1", "mic:default", item)],
                                                      ingest_wire.VERSION))
    back = msgspec.convert(sent, ingest_wire.Events)
    assert back.events[0].item == {"text": "tomato", "start": 1.25, "end": 2.5, "is_final": True}


def test_a_job_result_with_numpy_numbers_is_reported_and_read_back():
    done = job_wire.Finished("job-1", "t", "w1", job_wire.VERSION, {"duration": np.float64(3.5), "words": np.int64(7)})
    back = job_wire.read_report(job_wire.report_fields(done))
    assert isinstance(back, job_wire.Finished) and back.result == {"duration": 3.5, "words": 7}
