"""The GPU leases one `vm up` holds: from the GPU's attach, or from the start of a VM whose
config already names it, until that VM's start has ended.

A start outside the lease could give the card back to a VM a concurrent `gpu swap` has
just shut down to move the card away (the swap holds the lease throughout); so every
start or restart of a VM that names a GPU happens under that GPU's lease, as its attach
does, and the VM is recorded as the holder only once its start has ended.
"""

from __future__ import annotations

from contextlib import ExitStack
from types import TracebackType

from provision.gpu.claim import claim_gpus
from provision.pve.session import Session


class HeldLeases:
    """The leases of one VM's GPUs, taken by phase and ended together."""

    def __init__(self, session: Session, vm_name: str) -> None:
        self.session = session
        self.vm_name = vm_name
        self._stack = ExitStack()
        self._held: set[str] = set()

    def take(self, vmid: int, gpus: list[str], *, phase: str) -> None:
        """Take the leases of those gpus not held yet (gpu.claim.claim_gpus: refused when
        another VM holds one, or, for phase `starting`, when vmid's config no longer
        names it)."""
        wanted = [g for g in gpus if g not in self._held]
        if wanted:
            claim = claim_gpus(self.session, self.vm_name, vmid, wanted, phase=phase)
            self._stack.enter_context(claim)
            self._held.update(wanted)

    def release(self, failure: BaseException | None = None) -> None:
        """End every held lease: vmid becomes the holder; after a failure each lease is
        settled on what vmid's live config shows."""
        self._held.clear()
        if failure is None:
            self._stack.close()
        else:
            self._stack.__exit__(type(failure), failure, failure.__traceback__)

    def __enter__(self) -> HeldLeases:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        failure: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release(failure)
