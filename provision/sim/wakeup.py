"""The simulator's accept loops wait on their listening socket and a wakeup pair, so a stop
ends them at once instead of after a poll interval (a socket timeout or serve_forever's
poll_interval cost every simulator stop up to that long)."""

from __future__ import annotations

import selectors
import socket


class Wakeup:
    """A selector over one listening socket and a socket pair that wake() writes to."""

    def __init__(self, listening: socket.socket) -> None:
        self._reader, self._writer = socket.socketpair()
        self._selector = selectors.DefaultSelector()
        self._selector.register(listening, selectors.EVENT_READ)
        self._selector.register(self._reader, selectors.EVENT_READ)

    def wait(self) -> bool:
        """Block until a connection is pending (True) or wake() was called (False, and
        from then on at once: the wakeup byte is never read)."""
        ready = {key.fileobj for key, _ in self._selector.select()}
        return self._reader not in ready

    def wake(self) -> None:
        """End the wait of the accept loop, now or at its next wait."""
        self._writer.send(b"\0")

    def close(self) -> None:
        """Free the selector and the pair (once the accept loop has ended)."""
        self._selector.close()
        self._reader.close()
        self._writer.close()
