"""run_command against real processes: errors, transient retries, timeouts, redaction."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from batchkit.errors import CommandError, CommandTimeoutError, TransientCommandError
from batchkit.runner import CALL_COUNTS, redact, run_command


def test_success_and_count() -> None:
    before = CALL_COUNTS["echo"]
    result = run_command(["echo", "a b", "$HOME"])
    assert result.stdout == "a b $HOME\n"
    assert result.returncode == 0
    assert CALL_COUNTS["echo"] == before + 1


def test_failure_carries_argv_and_stderr() -> None:
    with pytest.raises(CommandError) as info:
        run_command(["sh", "-c", "echo nope >&2; exit 4"])
    assert info.value.returncode == 4
    assert "nope" in str(info.value)
    assert info.value.argv[0] == "sh"


def test_missing_program() -> None:
    with pytest.raises(CommandError, match="command not found"):
        run_command(["definitely-not-a-program-xyz"])


def test_check_false_returns_result() -> None:
    assert run_command(["sh", "-c", "exit 3"], check=False).returncode == 3


def test_transient_failures_are_retried(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    script = (
        f"n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; "
        '[ $n -ge 2 ] || { echo "Socket timed out" >&2; exit 1; }'
    )
    result = run_command(["sh", "-c", script], retries=3, backoff=0.01, transient=["socket timed out"])
    assert result.returncode == 0
    assert counter.read_text().strip() == "3"


def test_transient_gives_up() -> None:
    with pytest.raises(TransientCommandError):
        run_command(["sh", "-c", "echo busy >&2; exit 1"], retries=1, backoff=0.01, transient=["busy"])


def test_permanent_failure_is_not_retried(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    with pytest.raises(CommandError) as info:
        run_command(["sh", "-c", f"echo x >> {counter}; exit 1"], retries=3, backoff=0.01, transient=["busy"])
    assert not isinstance(info.value, TransientCommandError)
    assert counter.read_text().count("x") == 1


def test_timeout() -> None:
    with pytest.raises(CommandTimeoutError, match="did not finish"):
        run_command([sys.executable, "-c", "import time; time.sleep(5)"], timeout=0.3)


def test_redact() -> None:
    argv = ["tool", "--token", "abc", "--password=xyz", "--keep", "v", "-p", "1"]
    assert redact(argv) == ["tool", "--token", "***", "--password=***", "--keep", "v", "-p", "1"]
