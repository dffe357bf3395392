"""`feedrec` as a newcomer meets it: required options, checked values, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from app.cli import DEFAULT_TOKEN_TTL_S, main
from app.retrain_scope import left_out_text

pytestmark = pytest.mark.unit

SECRET = "s" * 40


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("JWT_SECRET", "JWT_MAX_LIFETIME_S", "JWT_ISSUER", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEEDREC_DATA_DIR", str(tmp_path))
    return tmp_path


def test_a_token_needs_the_viewer(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["token"])
    assert exit_.value.code == 2
    assert "--user" in capsys.readouterr().err


def test_a_token_lives_seven_days_like_the_banner_says(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert main(["token", "--user", "u000002"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert claims["sub"] == "u000002"
    assert claims["exp"] - claims["iat"] == DEFAULT_TOKEN_TTL_S == 7 * 86_400


@pytest.mark.parametrize(
    ("ttl", "said"), [("-5", "at least 1 second"), ("0", "at least 1"), ("604801", "JWT_MAX")]
)
def test_a_token_that_would_be_born_expired_or_refused_is_an_error(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    ttl: str,
    said: str,
) -> None:
    monkeypatch.setenv("JWT_SECRET", SECRET)
    assert main(["token", "--user", "u1", "--ttl", ttl]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert said in captured.err and len(captured.err.strip().splitlines()) == 1


def test_a_missing_secret_is_one_line_naming_the_fix_not_a_traceback(env: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "token", "--user", "u1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "set JWT_SECRET or run `feedrec up`" in done.stderr


def test_subcommand_help_describes_the_command_and_its_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    shown = capsys.readouterr().out
    assert "exit status 1 when a critical part is down" in shown
    assert "(default: 15)" in shown


def test_the_token_command_imports_neither_datadog_nor_pyarrow(env: Path) -> None:
    probe = (
        "import sys, os; os.environ['JWT_SECRET'] = 's' * 40; from app.cli import main; "
        "main(['token', '--user', 'u1']); "
        "print([m for m in ('datadog', 'pyarrow', 'grpc', 'sqlalchemy') if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_status_with_nothing_running_says_what_is_down_and_exits_1(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WEB_BIND", "127.0.0.1:9")  # discard port: nothing answers
    monkeypatch.setenv("LIGHTFM_TARGET", "127.0.0.1:9")
    assert main(["status"]) == 1
    shown = capsys.readouterr().out
    assert "[DOWN] web:" in shown
    assert "[DOWN] model service:" in shown
    assert "run `feedrec up` first" in shown
    assert "circuit breaker" in shown  # what it cannot see, it says
    assert not (env / "feedrec.db").exists()


def test_the_retrain_says_what_it_left_out_and_why() -> None:
    text = left_out_text(60, "2026-11-23T02:00:00+00:00", 3, 7_000)
    assert "3 interactions not exported yet" in text and "EXPORT_LAG_S (60 s)" in text
    assert "7,000 interactions that occurred since 2026-11-23" in text and "held out" in text
