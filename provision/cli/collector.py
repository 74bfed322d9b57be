"""The cyclic garbage collector, paused while a command starts.

Starting a command allocates a few hundred thousand objects that live as long as the
process: the modules of pydantic, requests, click and aihost, and the inventory's
validators. Python's collector scans them again and again as they appear: in a fresh
`vm up`, 130 collections took ~28 ms of its ~0.36 s of CPU, a single full one ~14 ms,
and none of them found garbage worth the scan. So the console entry pauses the collector,
and the command resumes it once it has started (its inventory loaded, or a server up):
what start-up made is frozen first (gc.freeze: left out of every later collection), and
a command that then waits for minutes collects its own garbage as usual.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Stop automatic collection until resume() (the console entry calls this first)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume() -> None:
    """Collect automatically again, with everything alive now frozen; a no-op unless
    pause() stopped it (aihost used as a library, or in tests, leaves the collector as
    its host process set it)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
