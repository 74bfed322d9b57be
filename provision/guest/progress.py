"""The model download's progress as the guest's state file records it (`download`: model,
completed and total bytes, index and count of the models), with the rate seen between
two reads and the time left at that rate: a line for people and an event for -o json."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GB = 10**9


@dataclass(frozen=True)
class Download:
    """One reading of the download: bytes of the current model done and in all (total None
    when the runtime does not know it yet)."""

    model: str
    completed: int
    total: int | None
    index: int = 1
    count: int = 1

    @property
    def percent(self) -> float | None:
        """Share done, 0-100 (None without a total)."""
        if not self.total:
            return None
        return round(100.0 * min(self.completed, self.total) / self.total, 1)


def parse_download(data: Any) -> Download | None:
    """The state file's `download` object, or None when absent or malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        return None
    numbers = {k: data.get(k) for k in ("completed", "total", "index", "count")}
    if not all(v is None or (isinstance(v, int) and v >= 0) for v in numbers.values()):
        return None
    return Download(
        data["model"],
        numbers["completed"] or 0,
        numbers["total"] or None,
        numbers["index"] or 1,
        numbers["count"] or 1,
    )


class DownloadMeter:
    """Rates from successive readings of the same model's download."""

    def __init__(self) -> None:
        self._last: tuple[Download, float] | None = None
        self.rate: float | None = None  # bytes per second between the last two changes

    def read(self, download: Download, at: float) -> bool:
        """Take a reading made at clock time at; True when it shows new bytes or a new model."""
        last = self._last
        if last is not None and last[0] == download:
            return False
        if last is not None and last[0].model == download.model and at > last[1]:
            self.rate = max(0.0, (download.completed - last[0].completed) / (at - last[1]))
        elif last is None or last[0].model != download.model:
            self.rate = None
        self._last = (download, at)
        return True

    def eta(self, download: Download) -> float | None:
        """Seconds left at the observed rate (None before a rate is known)."""
        if not self.rate or not download.total:
            return None
        return max(0.0, (download.total - download.completed) / self.rate)


def describe(download: Download, eta: float | None) -> str:
    """`llama3.1:8b (1/2): 1.23 of 4.92 GB (25.0%), about 3 min left`."""
    which = f" ({download.index}/{download.count})" if download.count > 1 else ""
    done = f"{download.completed / GB:.2f}"
    if download.total:
        amount = f"{done} of {download.total / GB:.2f} GB ({download.percent:.1f}%)"
    else:
        amount = f"{done} GB"
    left = f", about {_duration(eta)} left" if eta is not None else ""
    return f"downloading {download.model}{which}: {amount}{left}"


def event(download: Download, rate: float | None, eta: float | None) -> dict[str, Any]:
    """The same as describe, as a JSON event."""
    return {
        "event": "download",
        "model": download.model,
        "index": download.index,
        "count": download.count,
        "completed": download.completed,
        "total": download.total,
        "percent": download.percent,
        "rate_bytes_per_s": round(rate, 1) if rate is not None else None,
        "eta_seconds": round(eta, 1) if eta is not None else None,
    }


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
