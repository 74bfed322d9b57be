"""`host check`: each host's passthrough findings and the inventory VMs' readiness, as one
result with its text and the error it ends with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.errors import AihostError, ConflictError, PreflightError
from provision.gpu.preflight import HostReport, check_host
from provision.preflight.run import collect, report_lines
from provision.pve.session import Session
from provision.vmops.planner import read_state


@dataclass
class Readiness:
    """The hosts' reports, then what keeps the inventory's VMs from being applied."""

    reports: list[HostReport]
    gaps: list[str]
    notes: list[str]

    @property
    def ok(self) -> bool:
        """Every host ready and nothing in the way of the VMs."""
        return all(r.ok for r in self.reports) and not self.gaps

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return {
            "ok": self.ok,
            "hosts": [r.to_json() for r in self.reports],
            "vms": {"ok": not self.gaps, "problems": self.gaps, "notes": self.notes},
        }

    def to_text(self) -> str:
        """Host sections, then the VM readiness section; each headline states its verdict."""
        lines = []
        for report in self.reports:
            verdict = "OK" if report.ok else "NOT READY"
            lines.append(f"{report.host} (node {report.node}): {verdict}")
            for f in report.findings:
                lines.append(f"  [{'ok' if f.ok else 'FAIL'}] {f.check}: {f.detail}")
                if f.fix and not f.ok:
                    lines.append(f"         fix: {f.fix}")
        lines.append(f"VM readiness: {'NOT READY' if self.gaps else 'OK'}")
        lines += [f"  {gap}" for gap in self.gaps]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def error(self) -> PreflightError | None:
        """Exit 2 when a host is not ready, or when the hosts are but the VMs are not."""
        failed = [r.host for r in self.reports if not r.ok]
        if failed:
            return PreflightError(
                f"passthrough cannot work yet on {', '.join(failed)} (see the fixes above)"
            )
        if self.gaps:
            return PreflightError(
                "the hosts are ready, but the inventory's VMs cannot be applied yet "
                "(see 'VM readiness' above)"
            )
        return None


def host_readiness(session: Session, host_names: list[str]) -> Readiness:
    """Check each host (check_host), then plan the inventory's VMs on them (host_preflight)."""
    reports = [check_host(session, name) for name in host_names]
    gaps, notes = host_preflight(session, host_names)
    return Readiness(reports, gaps, notes)


def host_preflight(session: Session, host_names: list[str]) -> tuple[list[str], list[str]]:
    """`host check`'s part: plan each inventory VM on these hosts; (problems, notes).

    A GPU held by another VM is a note, not a problem: a shared GPU is normal and
    `aihost gpu swap` moves it.
    """
    states, problems, notes = [], [], []
    for name in sorted(session.inv.vms):
        if session.inv.vms[name].host not in host_names:
            continue
        try:
            states.append(read_state(session, name))
        except ConflictError as exc:
            notes.append(f"VM {name}: {exc}")
        except AihostError as exc:
            problems.append(f"pre-flight: cannot plan VM {name}: {exc}")
    return problems + report_lines(collect(session, states, verify=True)), notes
