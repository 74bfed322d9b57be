"""The QEMU bridge's translation of guest-agent replies into Proxmox API replies
(qemu-server Agent.pm); the lane (tests/guest_lane) runs it against a real agent."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from provision.sim import qemu_bridge


class _Agent:
    def __init__(self, replies: dict[str, Any]) -> None:
        self.replies = replies
        self.calls: list[tuple[str, Any]] = []

    def call(self, command: str, arguments: Any = None, timeout: float = 10) -> Any:
        self.calls.append((command, arguments))
        reply = self.replies[command]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self) -> None:
        pass


class _Guest:
    def __init__(self, replies: dict[str, Any], up: bool = True) -> None:
        self.agent = _Agent(replies)
        self.up = up

    def ping(self) -> bool:
        return self.up


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_exec_status_decodes_output_and_booleans_like_qemu_server() -> None:
    guest = _Guest(
        {
            "guest-exec-status": {
                "exited": True,
                "exitcode": 1,
                "out-data": _b64("out\n"),
                "err-data": _b64("bad\n"),
            }
        }
    )
    reply = qemu_bridge.answer(guest, "exec-status", {"pid": "7"})  # type: ignore[arg-type]
    assert reply == {"exited": 1, "exitcode": 1, "out-data": "out\n", "err-data": "bad\n"}
    assert guest.agent.calls == [("guest-exec-status", {"pid": 7})]


def test_exec_passes_argv_and_input_data() -> None:
    guest = _Guest({"guest-exec": {"pid": 42}})
    reply = qemu_bridge.answer(guest, "exec", {"command": ["cat"], "input-data": "hi"})  # type: ignore[arg-type]
    assert reply == {"pid": 42}
    assert guest.agent.calls == [
        ("guest-exec", {"path": "cat", "arg": [], "capture-output": True, "input-data": _b64("hi")})
    ]


def test_file_read_returns_content_and_agent_errors_are_proxmox_texts() -> None:
    guest = _Guest(
        {
            "guest-file-open": 3,
            "guest-file-close": {},
            "guest-file-read": {"count": 3, "buf-b64": _b64("{}\n"), "eof": True},
        }
    )
    reply = qemu_bridge.answer(guest, "file-read", {"file": "/x"})  # type: ignore[arg-type]
    assert reply == {"content": "{}\n", "bytes-read": 3}
    missing = _Guest(
        {
            "guest-file-open": RuntimeError(
                "failed to open file '/x' (mode: 'r'): No such file or directory"
            )
        }
    )
    with pytest.raises(qemu_bridge.SimAgentError, match=r"^Agent error: failed to open file"):
        qemu_bridge.answer(missing, "file-read", {"file": "/x"})  # type: ignore[arg-type]
    with pytest.raises(qemu_bridge.SimAgentError, match="QEMU guest agent is not running"):
        qemu_bridge.answer(_Guest({}, up=False), "ping", {})  # type: ignore[arg-type]
