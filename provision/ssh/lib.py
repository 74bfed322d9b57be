"""paramiko, imported on first use and without invoke.

Importing paramiko costs about a tenth of a second of CPU, so provision.ssh imports it only
when a connection is made. paramiko.config imports invoke (and with it unittest.mock:
~60 ms more) for one purpose only, running the commands of `Match exec` lines when an
SSHConfig is evaluated (paramiko/config.py `SSHConfig._does_match`: `invoke.run`). aihost never
reads an SSH config file (it connects with the inventory's ssh: settings), so paramiko
is imported as if invoke were not installed; paramiko handles that case itself (it raises
the ImportError only if a `Match exec` line is evaluated). When invoke is already
imported (another library of the same process uses it), it is left alone.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

_lock = threading.Lock()
_loaded: ModuleType | None = None  # set once the import has finished


def load_paramiko() -> ModuleType:
    """The paramiko module (imported on the first call, without invoke; see the module doc).

    Safe from several threads at once (`vm up --all`): sys.modules holds paramiko as soon as
    its import begins, half-initialised, so only a finished import counts here.
    """
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            hide_invoke = "invoke" not in sys.modules
            if hide_invoke:
                sys.modules["invoke"] = None  # type: ignore[assignment]  # `import invoke` fails
            try:
                import paramiko
            finally:
                if hide_invoke and "invoke" in sys.modules and sys.modules["invoke"] is None:
                    del sys.modules["invoke"]
            _loaded = paramiko
    return _loaded
