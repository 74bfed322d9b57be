"""`python -m provision.sim [--port N] [--fixture FILE] [--state DIR]`."""

from __future__ import annotations

import sys

from provision.sim.cli_entry import serve_forever

if __name__ == "__main__":
    sys.exit(serve_forever())
