"""The inventory's host entries: how aihost reaches a Proxmox node (API, credentials,
TLS, SSH, storage ids), and the strict base every inventory model shares."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from provision.inventory.pveformats import (
    ConfigId,
    DnsName,
    EnvName,
    NodeName,
    OneLine,
    StorageId,
    api_url,
    local_path,
)

FINGERPRINT_RE = re.compile(r"([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}")
# pve-access-control Auth/Plugin.pm $user_regex / $realm_regex, AccessControl.pm pve_verify_tokenid
USER_RE = r"[^\s:/@!]+@[A-Za-z][A-Za-z0-9.\-_]+"
TOKEN_ID_RE = re.compile(rf"{USER_RE}![A-Za-z][A-Za-z0-9.\-_]+")
USER_ID_RE = re.compile(USER_RE)
LocalPath = Annotated[Path, BeforeValidator(local_path)]


class Strict(BaseModel):
    """Base: unknown keys are errors, values are not coerced silently.

    defer_build: a model's validator is built when it is first used, not when its class is
    defined; the inventory's own validator covers the nested models (~8 ms of every start).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, allow_inf_nan=False, defer_build=True
    )


def refuse_inline(data: Any, keys: tuple[str, ...], what: str) -> Any:
    if isinstance(data, dict):
        for key in keys:
            if key in data:
                raise PydanticCustomError(
                    "inline_secret",
                    f"{what} written inline; secrets never go in the inventory: write "
                    "secret_env: VARIABLE_NAME or secret_file: /path/to/file instead",
                )
    return data


class SecretRef(Strict):
    """Where a secret is read from: an environment variable or a file, never the inventory."""

    secret_env: EnvName | None = None
    secret_file: LocalPath | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        return refuse_inline(data, ("secret", "value", "password", "token"), "a secret")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.secret_env is None) == (self.secret_file is None):
            raise PydanticCustomError(
                "secret_source", "give exactly one of secret_env: VARIABLE or secret_file: PATH"
            )
        return self


class UserDataSecret(SecretRef):
    """A secret that can only reach the guest inside its cloud-init user-data, which lies
    in plain text on a Proxmox storage (readable by anyone with Datastore.Audit there):
    allowed only with `store_in_user_data: true`, the explicit opt-in."""

    store_in_user_data: bool = False

    @model_validator(mode="after")
    def _opted_in(self) -> UserDataSecret:
        if not self.store_in_user_data:
            raise PydanticCustomError(
                "secret_at_rest",
                "this token would be stored in plain text in the VM's cloud-init user-data "
                "(readable on the Proxmox storage by anyone with Datastore.Audit); write "
                "store_in_user_data: true to accept that, or leave it out (public models "
                "need no token)",
            )
        return self


class TokenAuth(SecretRef):
    """API token: id `user@realm!name`; secret from env or file."""

    id: str

    @field_validator("id")
    @classmethod
    def _token_id(cls, value: str) -> str:
        if not TOKEN_ID_RE.fullmatch(value):
            raise PydanticCustomError(
                "token_id", "token id must look like user@realm!tokenname, e.g. aihost@pve!prov"
            )
        return value


class PasswordAuth(SecretRef):
    """Password (ticket) login, needed for raw `pci:` GPUs: only root@pam may set them."""

    user: str = "root@pam"

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not USER_ID_RE.fullmatch(value):
            raise PydanticCustomError(
                "user_id",
                "user must be NAME@REALM, e.g. root@pam: Proxmox refuses a login without realm",
            )
        return value


class TlsSettings(Strict):
    """TLS verification stays on; pin a self-signed certificate or name a CA file."""

    fingerprint: str | None = None
    ca_file: LocalPath | None = None

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not FINGERPRINT_RE.fullmatch(value):
            raise PydanticCustomError(
                "fingerprint",
                "fingerprint must be the certificate's SHA-256 as 32 hex pairs joined by ':' "
                "(pvenode cert info, or the fingerprint aihost prints when verification fails)",
            )
        return value.upper()


class SshSettings(Strict):
    """SSH/SFTP to the node, for snippet upload and host checks. Host keys are always checked."""

    user: str = Field("root", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$")
    host: DnsName | None = None
    port: int = Field(22, ge=1, le=65535)
    key: LocalPath | None = None
    known_hosts: LocalPath | None = None

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        """An IP address is a host too (a DNS name otherwise)."""
        if isinstance(value, str):
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                pass
        return value


class StorageSettings(Strict):
    """Proxmox storage ids: VM disks, cloud-init snippets, ISO images."""

    disks: StorageId = "local-lvm"
    snippets: StorageId = "local"
    iso: StorageId = "local"


# pve-guest-common PVE/Mapping/Dir.pm pve_verify_path (`m|^/[^;,=\(\)]+|`), for the whole
# path: a `map` entry is a property string, so , and = cannot be quoted either.
STORE_PATH_RE = re.compile(r"/[^;,=()\s]*")


class ModelStore(Strict):
    """A directory on the node shared into GPU VMs as their runtime's model directory
    (a Proxmox directory mapping passed as virtiofs; PVE 8.4 and later)."""

    path: str
    mapping: ConfigId = "aihost-models"

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not STORE_PATH_RE.fullmatch(value) or value == "/":
            raise PydanticCustomError(
                "store_path",
                "model_store.path must be an absolute directory on the node without spaces "
                "or any of ;,=() (Proxmox's directory mapping format), e.g. /srv/aihost-models",
            )
        return value


class Host(Strict):
    """One Proxmox node (or cluster entry point) aihost talks to."""

    api: str
    node: NodeName | None = None
    token: TokenAuth | None = None
    password: PasswordAuth | None = None
    tls: TlsSettings = TlsSettings()
    ssh: SshSettings | None = None
    storage: StorageSettings = StorageSettings()
    cloudinit_delivery: Literal["auto", "iso", "snippet"] = "auto"
    model_store: ModelStore | None = None
    sim_fixture: OneLine | None = None

    @field_validator("api")
    @classmethod
    def _api(cls, value: str) -> str:
        return api_url(value)

    @model_validator(mode="after")
    def _auth(self) -> Host:
        if self.api != "sim" and self.token is None and self.password is None:
            raise PydanticCustomError(
                "auth_missing",
                "host needs token: {id: user@realm!name, secret_env: VAR} "
                "(or password: {user: root@pam, secret_env: VAR})",
            )
        return self
