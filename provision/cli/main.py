"""`aihost`: the root command, global options, and the one place errors become exit codes."""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from typing import NoReturn

import click

from provision import __version__
from provision.cli import collector
from provision.cli.context import CliContext
from provision.cli.environment import Environment
from provision.cli.lazy import LazyGroup

COMMANDS = {
    "vm": ("provision.cli.vm_cmd:vm", "Create, converge, verify and remove LLM VMs."),
    "gpu": ("provision.cli.gpu_cmd:gpu", "List, map, swap and release GPUs (one holder each)."),
    "host": ("provision.cli.host_cmd:host", "Check a Proxmox host is ready for passthrough."),
    "inventory": ("provision.cli.inventory_cmd:inventory", "Validate and show the inventory."),
    "models": ("provision.cli.models_cmd:models", "Which models fit which GPU."),
    "render": ("provision.cli.render_cmd:render", "Print the cloud-init user-data of a VM."),
    "sim": ("provision.cli.sim_cmd:sim", "Run or reset the built-in simulated Proxmox."),
    "template": ("provision.cli.template_cmd:template", "Bake GPU-ready templates from recipes."),
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-i",
    "--inventory",
    "inventory_path",
    metavar="PATH",
    help="Inventory YAML file [env AIHOST_INVENTORY; default ./aihost.yaml].",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Result format; progress and errors go to stderr.",
)
@click.option("-v", "--verbose", count=True, help="More detail; -v shows tracebacks.")
@click.version_option(__version__, "--version", prog_name="aihost")
@click.pass_context
def cli(ctx: click.Context, inventory_path: str | None, output: str, verbose: int) -> None:
    """aihost: Proxmox VMs with a passed-through NVIDIA GPU and a private LLM server.

    Start with `aihost -i inventories/demo.yaml vm up llm-box` (runs against the
    built-in simulated Proxmox).
    """
    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    ctx.obj = CliContext(inventory_path=inventory_path, output=output, verbose=verbose, env=env)
    _quiet_libraries()


def _quiet_libraries() -> None:
    """Libraries must not print to the terminal: paramiko reports expected socket
    closes as errors, and urllib3 would log connection details."""
    import logging

    for name in ("paramiko", "urllib3"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn errors into one line and an exit code."""
    collector.pause()  # until the command has started (provision.cli.collector)
    exit_now(run(argv))


def exit_now(code: int) -> NoReturn:
    """End the process with code, skipping the interpreter's teardown when nothing needs it.

    Python's finalization (module teardown and garbage collection over the ~800 modules a
    `vm up` or `gpu swap` loads: requests, cryptography, paramiko, pydantic) takes 0.1-0.2
    s after the work is done, and a user, a script or a benchmark waits for the exit.
    The exit handlers still run (an in-process simulator stops, temporary folders go) and
    output is flushed; with a thread other than this one still alive (the normal exit
    joins it) or under a profiler or debugger, the normal exit is used.
    """
    import atexit
    import os
    import threading

    main_thread = threading.main_thread()
    others = any(t is not main_thread and not t.daemon for t in threading.enumerate())
    if others or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # a profiler or debugger writes its results at the normal exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`)
            stream.flush()
    os._exit(code)


def run(argv: list[str] | None = None, env: Environment | None = None) -> int:
    """Run the CLI in env (default: this process's terminal) and return the exit code
    (used by main and by tests)."""
    env = env if env is not None else Environment()
    args = argv if argv is not None else sys.argv[1:]
    with env.installed():
        return _run(args, env)


def _run(args: list[str], env: Environment) -> int:
    """Run the command; every error becomes one line on env.stderr and an exit code."""
    from provision.errors import EXIT_BUG, EXIT_INPUT, AihostError

    verbose = any(arg in ("-v", "--verbose") or arg.startswith("-vv") for arg in args)
    as_json = _wants_json(args)
    err, out = env.stderr, env.stdout
    try:
        code = cli.main(args=args, prog_name="aihost", standalone_mode=False, obj=env)
        if isinstance(code, int) and code:
            return code
    except AihostError as exc:
        if verbose:
            traceback.print_exc(file=err)
        text = _one_line(str(exc))
        print(f"aihost: error: {text}", file=err)
        if as_json and not getattr(exc, "reported", False):
            print(
                json.dumps({"error": text, "kind": type(exc).__name__, "exit_code": exc.exit_code}),
                file=out,
            )
        return exc.exit_code
    except click.exceptions.Abort:
        print("aihost: aborted", file=err)
        return 130
    except click.UsageError as exc:
        # one line like every other error: the option and what is wrong with its value
        message = " ".join(exc.format_message().split())
        command = exc.ctx.command_path if exc.ctx is not None else "aihost"
        print(f"aihost: error: {message} (see: {command} --help)", file=err)
        if as_json:
            print(
                json.dumps({"error": message, "kind": "UsageError", "exit_code": EXIT_INPUT}),
                file=out,
            )
        return EXIT_INPUT
    except click.ClickException as exc:
        exc.show(file=err)
        return EXIT_INPUT if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        print("aihost: interrupted", file=err)
        return 130
    except Exception as exc:  # the one broad catch: a bug, shown as one line unless -v
        if verbose:
            traceback.print_exc(file=err)
        print(
            f"aihost: internal error: {type(exc).__name__}: {exc} (run with -v for the "
            "traceback and please report it)",
            file=err,
        )
        return EXIT_BUG
    return 0


def _one_line(text: str) -> str:
    """An error is one line: a line break inside a value shows as \\n, never as a new line."""
    return "".join(c if c.isprintable() or c == " " else ascii(c)[1:-1] for c in text)


def _wants_json(args: list[str]) -> bool:
    for index, arg in enumerate(args):
        if arg in ("-o", "--output") and index + 1 < len(args):
            return args[index + 1] == "json"
        if arg in ("--output=json", "-ojson"):
            return True
    return False
