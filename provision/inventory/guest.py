"""What the guest gets from the inventory: its first NIC and its login user."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from provision.inventory.hosts import SecretRef, Strict, refuse_inline
from provision.inventory.pveformats import AddressList, BridgeId, OneLine

SSH_KEY_RE = re.compile(r"(ssh-(ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+) [A-Za-z0-9+/=]+( [^\n]*)?")


class Network(Strict):
    """The VM's first NIC and its cloud-init IP configuration."""

    bridge: BridgeId = "vmbr0"
    ip: str = "dhcp"
    gateway: str | None = None
    vlan: int | None = Field(None, ge=1, le=4094)
    nameserver: AddressList | None = None

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        if value == "dhcp":
            return value
        try:
            ipaddress.IPv4Interface(value)
        except ValueError:
            raise PydanticCustomError(
                "ip", "ip must be dhcp or an address with prefix, e.g. 192.168.1.50/24"
            ) from None
        if "/" not in value:
            raise PydanticCustomError("ip", "add the prefix length, e.g. 192.168.1.50/24")
        return value

    @field_validator("gateway")
    @classmethod
    def _gateway(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise PydanticCustomError("gateway", "gateway must be an IPv4 address") from None
        return value


class CloudUser(Strict):
    """The login user cloud-init creates in the guest."""

    name: str = Field("aihost", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    ssh_keys: list[OneLine] = []
    password: SecretRef | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_inline(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("password"), str):
            return refuse_inline({"password": 1}, ("password",), "the user's password")
        return data

    @field_validator("ssh_keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if not SSH_KEY_RE.fullmatch(key):
                raise PydanticCustomError(
                    "ssh_key", "ssh_keys entries must be public keys: 'ssh-ed25519 AAAA... comment'"
                )
        return keys
