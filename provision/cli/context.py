"""What every command gets: the inventory path, the output format, verbosity, printing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from provision.cli import collector
from provision.cli.environment import Environment

if TYPE_CHECKING:
    from provision.inventory import Inventory

DEFAULT_INVENTORY_NAMES = ("aihost.yaml", "inventory.yaml")


@dataclass
class CliContext:
    """State shared by the commands of one invocation."""

    inventory_path: str | None = None
    output: str = "text"
    verbose: int = 0
    env: Environment = field(default_factory=Environment)
    _inventory: Inventory | None = None

    @property
    def stdout(self) -> TextIO:
        """Where results go (the Environment's stdout)."""
        return self.env.stdout

    @property
    def stderr(self) -> TextIO:
        """Where progress, warnings and prompts go (the Environment's stderr)."""
        return self.env.stderr

    @property
    def interactive(self) -> bool:
        """Is someone at stdin to answer a question?"""
        return self.env.stdin_isatty

    def resolve_inventory_path(self) -> Path:
        """-i, then AIHOST_INVENTORY, then ./aihost.yaml; InputError if none is given."""
        from provision.errors import InputError

        chosen = self.inventory_path or self.env.env.get("AIHOST_INVENTORY")
        if chosen:
            return Path(chosen)
        for name in DEFAULT_INVENTORY_NAMES:
            if Path(name).is_file():
                return Path(name)
        raise InputError(
            "no inventory given",
            hint="pass -i inventories/demo.yaml or set AIHOST_INVENTORY",
        )

    def load_inventory(self) -> Inventory:
        """Load (once) and validate the inventory."""
        if self._inventory is None:
            from provision.inventory import load_inventory

            self._inventory = load_inventory(self.resolve_inventory_path())
            collector.resume()  # the command has started (provision.cli.collector)
        return self._inventory

    @property
    def json(self) -> bool:
        """True when --output json was asked for."""
        return self.output == "json"

    def emit(self, data: Any, text: str) -> None:
        """Print the result: data as JSON with --output json, else the text."""
        if self.json:
            self.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
        elif text:
            self.stdout.write(text if text.endswith("\n") else text + "\n")
        self.stdout.flush()

    def say(self, line: str) -> None:
        """A line of a long-running command's own output on stdout (not a result)."""
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def progress(self, message: str) -> None:
        """A progress line on stderr (stdout stays clean for results and JSON)."""
        self.stderr.write(message + "\n")
        self.stderr.flush()

    def event(self, data: dict[str, Any]) -> None:
        """A progress event: with --output json one JSON object per line on stderr (stdout
        keeps its one document); in text mode the progress lines say the same."""
        if self.json:
            self.stderr.write(json.dumps(data, sort_keys=False, default=str) + "\n")
            self.stderr.flush()

    def warn(self, message: str) -> None:
        """A warning on stderr."""
        self.stderr.write(f"aihost: warning: {message}\n")
        self.stderr.flush()

    def confirm(self, question: str) -> bool:
        """Ask question on stderr and read y/N from the Environment's stdin (False when no
        one is there to answer, or at end of input)."""
        if not self.interactive:
            return False
        self.stderr.write(f"{question} [y/N]: ")
        self.stderr.flush()
        answer = self.env.stdin.readline()
        return answer.strip().lower() in ("y", "yes")
