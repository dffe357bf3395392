"""The stall detector in a gevent-patched process configured as gunicorn's `post_fork` does it:
a greenlet that keeps the event loop past the threshold is counted and logged, with where."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, logging, sys, time
from app.stall_detector import configure_gevent_monitor, start_stall_detector
configure_gevent_monitor(20)  # before the hub exists, as in post_fork
from gevent import monkey
monkey.patch_all()
import gevent
from tests.fakes_feed import RecordingMetrics

records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.__dict__.get("where"))
logging.getLogger("feedrec.stalls").addHandler(Keep())

def hog(ms):  # CPU work that never yields to the hub
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass

metrics = RecordingMetrics()
counter = start_stall_detector(metrics, 20)
gevent.sleep(0.05)
hog(int(sys.argv[1]))
gevent.sleep(0.2)
print(json.dumps({"count": counter.count, "counters": metrics.counters, "logged": records}))
"""


def run(hog_ms: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(hog_ms)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_greenlet_holding_the_loop_past_the_threshold_is_counted_and_located() -> None:
    seen = run(120)
    assert isinstance(seen["count"], int) and seen["count"] >= 1
    counters = seen["counters"]
    assert isinstance(counters, list) and counters[0][0] == "feed.web.loop_blocked"
    logged = seen["logged"]
    assert isinstance(logged, list) and logged, "no log line for the stall"
    assert "<string>" in logged[0] and "hog" in logged[0]  # the blocking function, named


def test_short_work_is_not_a_stall() -> None:
    assert run(2)["count"] == 0


THREADPOOL_SCRIPT = """
import json, time
from app.stall_detector import configure_gevent_monitor, start_stall_detector
configure_gevent_monitor(20)
from gevent import monkey
monkey.patch_all()
import gevent
from gevent import get_hub
from tests.fakes_feed import RecordingMetrics

def wait_in_c(ms):  # what gRPC does in gevent's threadpool: block a thread of its own
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass

counter = start_stall_detector(RecordingMetrics(), 20)
pool = get_hub().threadpool
for _ in range(3):
    pool.apply(wait_in_c, (120,))  # the main loop waits cooperatively meanwhile
gevent.sleep(0.2)
print(json.dumps({"count": counter.count}))
"""


def test_a_thread_of_gevents_threadpool_blocking_is_not_a_stall_of_the_loop() -> None:
    done = subprocess.run(
        [sys.executable, "-c", THREADPOOL_SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1])["count"] == 0
