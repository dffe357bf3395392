"""`feedrec up`, the README's run command: the whole product on embedded defaults.

Starts the real processes of the Procfile (gunicorn with gevent workers, the LightFM model
service) through honcho on free loopback ports, then talks to them over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests.servers import consume_all, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FEEDREC = Path(sys.executable).parent / "feedrec"
README = Path(__file__).resolve().parents[2] / "README.md"
START_TIMEOUT_S = 120


@dataclass
class RunningStack:
    base_url: str
    token: str
    process: subprocess.Popen[str]
    log: Path
    kafka: str
    env: dict[str, str]


def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _post(url: str, body: object, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _components_ok(base_url: str, names: tuple[str, ...]) -> bool:
    try:
        _, body = _get(f"{base_url}/readyz")
    except (urllib.error.URLError, ConnectionError):
        return False
    components = body.get("components", {})
    assert isinstance(components, dict)
    return all(components.get(name, {}).get("ok") for name in names)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    data_dir = tmp_path_factory.mktemp("embedded")
    web_port, model_port, kafka_port = free_port(), free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "JWT_", "KAFKA_", "LIGHTFM_", "MODEL_", "WEB_"))
    }
    env.update(
        FEEDREC_DATA_DIR=str(data_dir),
        WEB_BIND=f"127.0.0.1:{web_port}",
        WEB_WORKERS="1",
        LIGHTFM_BIND=f"127.0.0.1:{model_port}",
        LIGHTFM_TARGET=f"127.0.0.1:{model_port}",
        EMBEDDED_KAFKA_BIND=f"127.0.0.1:{kafka_port}",
    )
    log = data_dir / "stack.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(FEEDREC), "up"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # one process group: honcho and everything it starts
        )
    base_url = f"http://127.0.0.1:{web_port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"feedrec up exited with {process.returncode}:\n{log.read_text()}")
            try:
                if _get(f"{base_url}/healthz")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the stack did not answer in {START_TIMEOUT_S}s:\n{log.read_text()}")
            time.sleep(0.5)
        while not _components_ok(base_url, ("model", "kafka", "trending", "database")):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the stack did not become ready:\n{log.read_text()}")
            time.sleep(0.5)
        match = re.search(r"A token for viewer \S+ \(7 days\):\s+(\S+)", log.read_text())
        assert match, "feedrec up prints a ready token"
        yield RunningStack(base_url, match.group(1), process, log, f"127.0.0.1:{kafka_port}", env)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_the_stack_answers_healthz_and_serves_a_valid_openapi_document(stack: RunningStack) -> None:
    assert _get(f"{stack.base_url}/healthz") == (200, {"status": "ok"})
    status, document = _get(f"{stack.base_url}/openapi.json")
    assert status == 200
    validate(document)


def test_the_first_request_already_gets_lightfm_recommendations(stack: RunningStack) -> None:
    status, body = _get(
        f"{stack.base_url}/feed/recommendations?userId=u000001&limit=10", stack.token
    )
    assert status == 200, body
    assert body["algorithm"] == "lightfm"
    assert body["fallbackReason"] is None
    items = body["items"]
    assert isinstance(items, list) and len(items) == 10
    assert body["nextCursor"]


def test_the_stack_is_ready_with_its_database(stack: RunningStack) -> None:
    status, body = _get(f"{stack.base_url}/readyz")
    assert status == 200, body
    components = body["components"]
    assert isinstance(components, dict) and components["database"]["ok"] is True


def test_the_printed_token_records_an_interaction_that_reaches_the_embedded_broker(
    stack: RunningStack,
) -> None:
    event = {
        "eventId": "embedded-run-1",
        "userId": "u000001",
        "videoId": "v000042",
        "interactionType": "like",
        "watchTime": 4200,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    status, body = _post(f"{stack.base_url}/feed/interactions", event, stack.token)
    assert status == 202, body
    assert body["accepted"] == 1
    records = consume_all(stack.kafka, "feed.interactions.v1", expected=1, timeout=30)
    assert [json.loads(r.value or b"")["eventId"] for r in records] == ["embedded-run-1"]


def test_the_printed_token_may_not_write_for_another_viewer(stack: RunningStack) -> None:
    event = {
        "userId": "u000002",
        "videoId": "v000042",
        "interactionType": "like",
        "watchTime": 4200,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    assert _post(f"{stack.base_url}/feed/interactions", event, stack.token)[0] == 403


def test_the_log_is_one_json_object_a_line_from_the_web_process(stack: RunningStack) -> None:
    web_lines = [
        line.split("|", 1)[1].strip()
        for line in stack.log.read_text().splitlines()
        if re.match(r"^\S+ web\.\d+\s+\|", line)
    ]
    assert web_lines, "honcho prefixes web output with 'web.1 |'"
    json_lines = [line for line in web_lines if line.startswith("{")]
    assert json_lines
    for line in json_lines:
        json.loads(line)
    # Requests carried the token; no log line of the web process may repeat it.
    assert not any(stack.token in line for line in web_lines)


def quick_start_block() -> str:
    """The README's Quick start commands, the block after its `quick-start` marker."""
    text = README.read_text()
    after = text[text.index("<!-- quick-start:") :]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]


def test_the_readme_quick_start_runs_line_by_line(stack: RunningStack) -> None:
    script = (
        quick_start_block()
        .replace("http://127.0.0.1:8000", stack.base_url)
        .replace(".venv/bin/feedrec", str(FEEDREC))
        .replace("curl ", "curl -fsS ")  # a 4xx answer fails the line, as a reader would notice
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"algorithm":"lightfm"' in done.stdout.replace(" ", "")
    assert '"accepted":1' in done.stdout.replace(" ", "")
    assert "Overall: ok" in done.stdout
