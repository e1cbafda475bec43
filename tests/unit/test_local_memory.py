"""`boomerang local`'s memory settings (issue 16.8): the retention caps a run may override, the
tracemalloc probe that finds what grows, and the bounded malloc arenas it re-executes itself with."""

from __future__ import annotations

import io
import sys
from typing import Any

import pytest

from infra.local import cli, retention
from infra.local.memory_probe import MemoryProbe


@pytest.fixture
def caps(monkeypatch: pytest.MonkeyPatch) -> None:
    for cap in retention.CAPS:  # put back whatever a test configures
        monkeypatch.setattr(retention, cap, getattr(retention, cap))


def test_a_run_overrides_the_caps_the_sweeper_reads(caps: None) -> None:
    default_outbox = retention.OUTBOX_CAP
    chosen = retention.configure_caps(
        {"BOOMERANG_LOCAL_EXECUTION_CAP": "400", "BOOMERANG_LOCAL_ARCHIVE_CAP": " 50 "}
    )
    assert retention.EXECUTION_CAP == 400 and retention.ARCHIVE_CAP == 50
    assert chosen["OUTBOX_CAP"] == default_outbox  # unset: the default stays


@pytest.mark.parametrize("value", ["0", "-3", "many", "1e3", "10000001"])
def test_a_bad_cap_is_refused_by_name_and_nothing_changes(caps: None, value: str) -> None:
    before = {cap: getattr(retention, cap) for cap in retention.CAPS}
    with pytest.raises(ValueError, match="BOOMERANG_LOCAL_HISTORY_CAP=.*whole number from 1 to 10,000,000"):
        retention.configure_caps({"BOOMERANG_LOCAL_EXECUTION_CAP": "5", "BOOMERANG_LOCAL_HISTORY_CAP": value})
    assert {cap: getattr(retention, cap) for cap in retention.CAPS} == before


def test_the_cli_refuses_a_bad_cap_before_starting(
    caps: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOOMERANG_LOCAL_OUTBOX_CAP", "lots")
    assert cli.main(["local", "--port", "1"]) == 2
    assert "BOOMERANG_LOCAL_OUTBOX_CAP='lots'" in capsys.readouterr().err


def test_the_cli_refuses_a_bad_tracemalloc_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOOMERANG_TRACEMALLOC", "yes")
    assert cli.main(["local", "--port", "1"]) == 2
    assert "BOOMERANG_TRACEMALLOC='yes'" in capsys.readouterr().err


def test_the_probe_names_the_line_that_kept_memory() -> None:
    assert MemoryProbe.from_env({}) is None and MemoryProbe.from_env({"BOOMERANG_TRACEMALLOC": "0"}) is None
    out = io.StringIO()
    probe = MemoryProbe(out=out).start()
    kept = []
    try:
        kept.append(bytearray(2_000_000))  # the growth to find
        top = probe.report()
    finally:
        probe.stop()
    where, grown, _ = top[0]
    assert where.endswith(f"test_local_memory.py:{sys._getframe().f_lineno - 5}") and grown >= 2_000_000
    assert "[memory] SIGUSR1: traced" in out.getvalue() and "VmRSS" in out.getvalue()
    assert "[memory] stop" in out.getvalue()


def test_local_reexecutes_itself_with_bounded_arenas(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> Any:
        calls.append((path, argv, env))
        raise SystemExit(0)  # execve never returns

    monkeypatch.setattr(cli.os, "execve", execve)
    monkeypatch.setattr(sys, "orig_argv", [sys.executable, "-m", "infra.local", "local", "--port", "9"])
    monkeypatch.setattr(sys, "argv", ["boomerang", "local", "--port", "9"])
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    with pytest.raises(SystemExit):
        cli.main()
    [(path, argv, env)] = calls
    assert path == sys.executable and argv == sys.orig_argv  # the very same command line
    assert env["MALLOC_ARENA_MAX"] == cli.MALLOC_ARENA_MAX == "2"

    # already set (the re-executed process, or the caller's own choice): no second exec
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.setattr(cli, "_serve", lambda args: 0)
    assert cli.main() == 0 and len(calls) == 1
