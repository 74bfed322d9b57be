"""Build a #cloud-config document from the Jinja2 templates, as checked data.

The entry template `user-data.yaml.j2` and the partials `distro/<distro>.yaml.j2` and
`runtime/<runtime>.yaml.j2` each render to a YAML mapping that is parsed and checked on
its own, then merged (lists appended in that order) and dumped once. Scripts and unit
files are templates too, pulled into `write_files` through `file("scripts/...")`. A VM's
user-data (render) and a template's bake (bake) are both built here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from provision.cloudinit.escape import env_file_quote, sh_quote, systemd_quote, yaml_quote
from provision.errors import InputError
from provision.inventory.secrets import redact
from provision.paths import builtin_templates_dir, cache_dir

# libyaml's parser where PyYAML has it (same documents, ~10x faster than the pure-Python one)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

if TYPE_CHECKING:
    from jinja2 import Environment

ENTRY = "user-data.yaml.j2"
LIST_KEYS = ("users", "packages", "write_files", "bootcmd", "runcmd")
MAP_KEYS = ("apt", "power_state", "updates")
SCALAR_KEYS = ("hostname", "ssh_pwauth", "package_update", "package_upgrade", "final_message")
ALLOWED_KEYS = frozenset(LIST_KEYS + MAP_KEYS + SCALAR_KEYS)


@dataclass(frozen=True)
class RenderedUserData:
    """A rendered #cloud-config document and the secret values it holds."""

    text: str = field(repr=False)
    secrets: list[str] = field(default_factory=list, repr=False)
    masked_text: str | None = field(default=None, repr=False, compare=False)

    def masked(self) -> str:
        """The document with every secret replaced by '***' (safe to print or log)."""
        base = self.masked_text if self.masked_text is not None else self.text
        return redact(base, self.secrets)

    @property
    def sha256(self) -> str:
        """SHA-256 of the real document (what the guest receives)."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def template_names(context: dict[str, Any]) -> list[str]:
    """The mapping templates merged into the document, in order."""
    return [ENTRY, f"distro/{context['distro']}.yaml.j2", f"runtime/{context['runtime']}.yaml.j2"]


def render_document(
    env: Environment, context: dict[str, Any], installed: frozenset[str] = frozenset()
) -> str:
    """The document the templates build for context; installed names packages the image
    already has (a baked template's): when it has them all, no apt runs at all."""
    doc: dict[str, Any] = {}
    for name in template_names(context):
        _merge(doc, _render_mapping(env, name, context), name)
    if installed and set(map(str, doc.get("packages") or [])) <= installed:
        # An image that has every package needs no apt at all: cloud-init runs
        # `apt-get update` whenever `packages` is given, whatever package_update says.
        del doc["packages"]
        doc["package_update"] = False
    text = "#cloud-config\n" + yaml.dump(
        doc, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=1_000_000
    )
    # the final text must say exactly what was built
    if yaml.load(text, Loader=SAFE_LOADER) != doc:
        raise InputError("the rendered user-data does not read back as the document built")
    return text


def _render_mapping(env: Environment, name: str, context: dict[str, Any]) -> dict[str, Any]:
    text = _render_text(env, name, context)
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1} of its output)" if mark is not None else ""
        raise InputError(f"template {name} rendered invalid YAML{where}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"template {name} must render a YAML mapping")
    unknown = sorted(set(map(str, data)) - ALLOWED_KEYS)
    if unknown:
        raise InputError(f"template {name} rendered unexpected keys: {', '.join(unknown)}")
    for key in LIST_KEYS:
        if key in data and not isinstance(data[key], list):
            raise InputError(f"template {name}: {key} must be a list")
    for key in MAP_KEYS:
        if key in data and not isinstance(data[key], dict):
            raise InputError(f"template {name}: {key} must be a mapping")
    return data


def _merge(doc: dict[str, Any], part: dict[str, Any], name: str) -> None:
    for key, value in part.items():
        if key in LIST_KEYS:
            have = doc.setdefault(key, [])
            have.extend(v for v in value if key != "packages" or v not in have)
        elif key in MAP_KEYS:
            doc[key] = {**doc.get(key, {}), **value}
        elif key in doc and doc[key] != value:
            raise InputError(f"template {name} sets {key} again with another value")
        else:
            doc[key] = value


def _render_text(env: Environment, name: str, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise InputError(
            f"template {exc.filename or exc.name or name}, line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise InputError(
            f"template {exc.name} not found (looked in the templates dir and "
            f"{builtin_templates_dir()})"
        ) from None
    except jinja2.TemplateError as exc:
        raise InputError(f"template {_template_frame(exc) or name}: {exc}") from None


def _template_frame(exc: BaseException) -> str | None:
    """'FILE, line N' of the innermost template frame in exc's traceback."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return found


def environment(override: Path | None) -> Environment:
    """The Jinja2 environment: the inventory's templates dir (override) before aihost's."""
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        loaders.append(jinja2.FileSystemLoader(str(Path(override).expanduser())))
    loaders.append(jinja2.FileSystemLoader(str(builtin_templates_dir())))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(yaml=yaml_quote, sh=sh_quote, systemd=systemd_quote, envfile=env_file_quote)

    @jinja2.pass_context
    def file(ctx: jinja2.runtime.Context, name: str) -> str:
        return env.get_template(name).render(ctx.get_all())

    env.globals["file"] = file
    return env


def _bytecode_cache() -> Any:
    """The templates compiled before, kept in the user's cache dir (jinja2's
    FileSystemBytecodeCache: keyed by template name and source checksum, written to a
    temporary name then renamed): compiling them took ~40 ms of every `vm up`. Not in the
    state dir: compiled templates belong to no world, so a new state dir (another
    AIHOST_STATE_DIR, a reset) finds them compiled, as Python finds its .pyc files. None
    when the cache dir cannot hold it."""
    import jinja2

    folder = cache_dir() / "jinja2"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(folder))


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings as literal blocks (readable scripts)."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)
