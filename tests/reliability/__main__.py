"""`python -m tests.reliability --trials 2000`: run reliability trials and print the counts
per kind and every violation (each with the seed that repeats it)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.reliability.lab import start_labs  # noqa: E402
from tests.reliability.trials import KINDS, run_many  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Run the trials; exit 1 when any trial broke an invariant."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1, help="seed of the first trial")
    parser.add_argument("--budget", type=float, default=None, help="stop after SECONDS")
    parser.add_argument(
        "--labs", type=int, default=3, help="simulators run side by side (one trial at a time each)"
    )
    parser.add_argument("--kind", choices=sorted(KINDS), help="run only trials of this kind")
    parser.add_argument(
        "--logs", type=Path, help="write each broken trial's commands and their stderr here"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    args = parser.parse_args(argv)
    # The simulators' SFTP endpoint logs every client a trial kills ("Socket exception");
    # a killed client is what the trials do, not news.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    labs = start_labs(args.labs)
    try:
        log = None if args.quiet else (lambda line: print(line, flush=True))
        summary = run_many(labs, args.seed, args.trials, args.budget, log, args.kind)
    finally:
        for lab in labs:
            lab.close()
    print(summary.text())
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
        for trial in summary.broken:
            text = f"{trial.line()}\n\n" + "\n".join(trial.logs)
            (args.logs / f"seed-{trial.seed}.log").write_text(text)
    return 1 if summary.broken else 0


if __name__ == "__main__":
    sys.exit(main())
