"""Load generators and gauges for bench/ingest.py: `wrk` closed-loop POSTs, an open-loop
asyncio POST generator, a DogStatsD receiver and the share of CPU other processes take."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

#: Events cycle through this many viewers.
USERS = 1_000

WRK_SCRIPT = r"""
function init(args)
  kind, token, ts, size = args[1], args[2], args[3], tonumber(args[4])
  n, accepted, other = 0, 0, 0
  headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
end
local function event()
  n = n + 1
  return string.format('{"eventId":"%s-%d","userId":"u%d","videoId":"v%d",' ..
    '"interactionType":"view","watchTime":%d,"timestamp":"%s"}',
    kind, n, n % 1000, n % 5000, n % 60000, ts)
end
function request()
  local body
  if size == 1 then body = event() else
    local parts = {}
    for i = 1, size do parts[i] = event() end
    body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  end
  return wrk.format("POST", "/feed/interactions", headers, body)
end
function response(status, hdrs, body)
  if status == 202 then accepted = accepted + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local a, o = 0, 0
  for _, t in ipairs(threads or {}) do a = a + t:get("accepted"); o = o + t:get("other") end
  io.write(string.format('WRKJSON {"accepted":%d,"other":%d,"seconds":%f,"p50_ms":%f,' ..
    '"p99_ms":%f,"socket_errors":%d}\n', a, o, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
threads = {}
function setup(thread) table.insert(threads, thread) end
"""


class StatsdReceiver(threading.Thread):
    """The Datadog agent's UDP port: keeps `feed.kafka.publish_latency_ms` samples."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.latencies: list[float] = []

    def run(self) -> None:
        while True:
            try:
                data = self.sock.recv(65_535)
            except OSError:
                return
            for line in data.decode().splitlines():
                if line.startswith("feed.kafka.publish_latency_ms:"):
                    self.latencies.append(float(line.split(":", 1)[1].split("|")[0]))


def run_wrk(
    port: int, token: str, kind: str, size: int, conns: int, seconds: float
) -> dict[str, Any]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_SCRIPT)
    ts = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    argv = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{seconds:.0f}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
        "--",
        kind,
        token,
        ts,
        str(size),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    script.unlink()
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("WRKJSON "))
    return result


async def paced_posts(
    port: int, token: str, rate: float, seconds: float, per_post: int
) -> dict[str, Any]:
    """Open loop: `rate` events a second as POSTs of `per_post` events (a single event when 1),
    one every per_post/rate s, whatever the answers do."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    statuses: Counter[int] = Counter()
    lags: list[float] = []
    http_ms: list[float] = []
    ts = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    head = (
        f"POST /feed/interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        f"{token}\r\nContent-Type: application/json\r\n"
    )

    def event(number: int) -> dict[str, Any]:
        return {
            "eventId": f"steady-{number}",
            "userId": f"u{number % USERS}",
            "videoId": f"v{number % 5000}",
            "interactionType": "like",
            "watchTime": 1000,
            "timestamp": ts,
        }

    async def exchange(
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
    ) -> int:
        reader, writer = connection
        sent = loop.time()
        writer.write(request)
        status = int((await reader.readline()).split(b" ", 2)[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        http_ms.append((loop.time() - sent) * 1000)
        return status

    async def one(number: int) -> None:
        events = [event(number * per_post + i) for i in range(per_post)]
        body = json.dumps(events[0] if per_post == 1 else {"events": events}).encode()
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        # A kept-alive connection the server has closed meanwhile (gunicorn's keepalive is
        # 5 s) fails at once: retry on a new one (event ids make a repeat harmless).
        for reused in (bool(idle), False):
            try:
                connection = (
                    idle.pop() if reused else await asyncio.open_connection("127.0.0.1", port)
                )
                status = await exchange(connection, request)
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                if not reused:
                    statuses[-1] += 1
                    return
                connection[1].close()
                continue
            statuses[status] += 1
            idle.append(connection)
            return

    tasks: set[asyncio.Task[None]] = set()
    cpu, start = time.process_time(), loop.time() + 0.01
    posts_per_s = rate / per_post
    for number in range(int(posts_per_s * seconds)):
        scheduled = start + number / posts_per_s
        if (delay := scheduled - loop.time()) > 0:
            await asyncio.sleep(delay)
        lags.append((loop.time() - scheduled) * 1000)
        task = asyncio.create_task(one(number))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=15)
    elapsed = loop.time() - start
    for _, writer in idle:
        writer.close()
    return {
        "accepted": statuses[202] * per_post,
        "other": sum(statuses.values()) - statuses[202],
        "statuses": {("socket error" if k < 0 else str(k)): n for k, n in statuses.items()},
        "seconds": elapsed,
        "generator_cpu_s": time.process_time() - cpu,
        "send_lag_p99_ms": float(np.percentile(lags, 99)),
        "http_p50_ms": float(np.percentile(http_ms or [0.0], 50)),
        "http_p95_ms": float(np.percentile(http_ms or [0.0], 95)),
    }


class CpuShare:
    """How much of the machine's busy CPU time went to processes outside this benchmark (the
    machine may be shared): busy time from /proc/stat minus this process's tree and the
    PostgreSQL server's, which pg_ctl detaches."""

    def __init__(self, postmaster_pid: int) -> None:
        self.roots = {os.getpid(), postmaster_pid}
        self.start = self._sample()

    @staticmethod
    def _busy() -> float:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # minus idle and iowait

    def _ours(self) -> float:
        parents: dict[int, int] = {}
        ticks: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            pid = int(entry.name)
            parents[pid] = int(stat[1])
            ticks[pid] = sum(float(x) for x in stat[11:15])  # utime stime cutime cstime
        ours = 0.0
        for pid in parents:
            node = pid
            while node not in self.roots and node > 1:
                node = parents.get(node, 0)
            if node in self.roots:
                ours += ticks[pid]
        return ours

    def _sample(self) -> tuple[float, float]:
        return self._busy(), self._ours()

    def foreign(self) -> float:
        """Share (0..1) of the busy CPU time since construction used by other processes."""
        busy0, ours0 = self.start
        busy, ours = self._sample()
        return max(0.0, 1.0 - (ours - ours0) / max(busy - busy0, 1.0))
