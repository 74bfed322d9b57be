# ruff: noqa: E501  (a table of cases: one case per line reads best)
"""A corpus of hostile inventories and hostile CLI invocations, generated from tables.

Every inventory case is the valid BASE inventory with one edit (a line replaced, lines
appended, or a whole raw file), the line the error must name, and a fragment the one
error line must contain. Every CLI case is an argument list run against the valid BASE
and a fragment naming the option or argument. `python -m support.hostile_corpus SPEC`
runs them all in one process and prints per-case time and peak allocation as JSON.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

BASE = """\
version: 1
hosts:
  pve1:
    api: {api}
    token: {{id: "{token_id}", secret_file: "{dir}/token"}}
    tls: {{fingerprint: "{fingerprint}"}}
    storage: {{disks: local-lvm, snippets: local, iso: local}}
gpus:
  rtx4090: {{host: pve1, mapping: rtx4090, vram_gb: 24}}
vms:
  llm-box:
    host: pve1
    template: ubuntu-2404-cloud
    gpu: rtx4090
    cores: 4
    memory_gb: 16
    disk_gb: 40
    runtime: ollama
    models: ["llama3.1:8b"]
    network: {{bridge: vmbr0, ip: dhcp}}
    user: {{name: aihost, ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB aihost@test"]}}
"""
VM_LINE = len(BASE.splitlines()) + 1  # the first appended line (inside vms.llm-box)


@dataclass
class Case:
    """One hostile inventory: how it differs from BASE, and where the error must point."""

    id: str
    line: int
    fragment: str
    replace: dict[int, str] = field(default_factory=dict)
    append: tuple[str, ...] = ()
    raw: bytes | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def _r(id_: str, line: int, text: str, fragment: str, **kw: object) -> Case:
    return Case(id_, line, fragment, replace={line: text}, **kw)  # type: ignore[arg-type]


def _vm(id_: str, text: str, fragment: str, **kw: object) -> Case:
    return Case(id_, VM_LINE, fragment, append=("    " + text,), **kw)  # type: ignore[arg-type]


def _laughs(levels: int) -> bytes:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return ("\n".join(lines) + "\n").encode()


API, TOKEN, TLS, STORAGE, GPU, VMNAME = 4, 5, 6, 7, 9, 11
HOST, TEMPLATE, VMGPU, CORES, MEMORY, DISK, RUNTIME, MODELS, NETWORK, USER = range(12, 22)

INVENTORY_CASES: list[Case] = [
    # ---- YAML and file level (provision/inventory/reading.py, yamlpos.py) ----
    Case("laughs-7", 1, "expands to more than", raw=_laughs(7)),
    Case("laughs-9", 1, "expands to more than", raw=_laughs(9)),
    Case(
        "recursive-alias",
        2,
        "refers to a value that contains it",
        raw=b"version: 1\nhosts: &h\n  pve1: *h\n",
    ),
    Case("deep-flow-5000", 1, "nesting deeper", raw=b"hosts: " + b"[" * 5000 + b"]" * 5000),
    Case("deep-map-3000", 1, "nesting deeper", raw=b"hosts: " + b"{a: " * 3000 + b"}" * 3000),
    Case(
        "alias-chain",
        1,
        "nesting deeper",
        raw="\n".join(
            ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 200)]
        ).encode(),
    ),
    Case(
        "list-as-key",
        3,
        "a key must be a plain string",
        raw=b"version: 1\nhosts:\n  ? [a]\n  : 1\n",
    ),
    Case(
        "map-as-key",
        3,
        "a key must be a plain string",
        raw=b"version: 1\nhosts:\n  ? {a: 1}\n  : 1\n",
    ),
    _r("int-key", VMNAME, "  1234:", "quote it"),
    _r("bool-key", VMNAME, "  yes:", "read as bool"),
    _r("null-key", VMNAME, "  ~:", "read as NoneType"),
    _r("float-key", GPU, "  1.5: {host: pve1, mapping: rtx4090, vram_gb: 24}", "read as float"),
    Case("latin-1", 2, "not UTF-8 text", raw="version: 1\n# caf\u00e9\n".encode("latin-1")),
    Case("utf-16", 1, "not UTF-8 text", raw="version: 1\n".encode("utf-16")),
    Case(
        "invalid-utf8-in-value", 3, "not UTF-8 text", raw=b"version: 1\nhosts:\n  p\xc3\x28: {}\n"
    ),
    Case("nul-byte", 2, "not allowed in YAML", raw=b"version: 1\nhosts: {}\x00\n"),
    Case("escape-char", 2, "not allowed in YAML", raw=b"version: 1\nhosts: {}\x1b[2J\n"),
    Case("binary-tag", 2, "!!binary", raw=b"version: 1\nhosts: !!binary aGVsbG8=\n"),
    _r("binary-value", CORES, "    cores: !!binary NA==", "!!binary"),
    Case("set-tag", 2, "!!set", raw=b"version: 1\nhosts: !!set {a, b}\n"),
    Case("omap-tag", 2, "!!omap", raw=b"version: 1\nhosts: !!omap [a: 1]\n"),
    Case(
        "python-tag", 2, "python/object", raw=b"version: 1\nhosts: !!python/object:os.system {}\n"
    ),
    Case("python-name-tag", 2, "python/name", raw=b"version: 1\nhosts: !!python/name:os.system\n"),
    Case("custom-tag", 2, "!vault", raw=b"version: 1\nhosts: !vault {}\n"),
    Case("bad-int-tag", 2, "not valid YAML", raw=b"version: 1\nhosts: !!int abc\n"),
    Case("merge-scalar", 3, "merge key", raw=b"version: 1\nhosts:\n  <<: 5\n"),
    Case("two-documents", 2, "not valid YAML", raw=b"version: 1\n---\nversion: 1\n"),
    Case("tab-indent", 3, "not valid YAML", raw=b"version: 1\nhosts:\n\tpve1: {}\n"),
    Case(
        "unclosed-flow", 3, "not valid YAML", raw=b"version: 1\nhosts: {pve1: {api: sim}\nvms: {}\n"
    ),
    _r("duplicate-key", DISK, "    cores: 8", "duplicate key 'cores'"),
    Case("top-level-list", 1, "must be a mapping", raw=b"- version: 1\n"),
    Case("top-level-scalar", 1, "must be a mapping", raw=b"just text\n"),
    Case("oversized", 0, "larger than 256 KiB", raw=b"version: 1\n#" + b"x" * 300_000 + b"\n"),
    # ---- hosts ----
    _r("api-http", API, "    api: http://127.0.0.1:8006", "only speaks HTTPS"),
    _r("api-port-999999", API, "    api: https://127.0.0.1:999999", "out of range"),
    _r("api-port-0", API, "    api: https://127.0.0.1:0", "out of range"),
    _r("api-port-65536", API, "    api: https://127.0.0.1:65536", "out of range"),
    _r("api-path", API, "    api: https://127.0.0.1:8006/api2/json", "api must be https://HOST"),
    _r("api-userinfo", API, "    api: https://root@127.0.0.1:8006", "api must be https://HOST"),
    _r("api-space", API, '    api: "https://pve 1:8006"', "api must be https://HOST"),
    _r("api-newline", API, '    api: "https://127.0.0.1:8006\\n"', "api must be https://HOST"),
    _r("api-query", API, "    api: https://127.0.0.1:8006?x=1", "api must be https://HOST"),
    _r("api-int", API, "    api: 8006", "valid string"),
    _r("api-bool", API, "    api: true", "valid string"),
    _r("api-bad-label", API, "    api: https://-pve.lan:8006", "api must be https://HOST"),
    _r(
        "token-id-no-name",
        TOKEN,
        '    token: {id: "aihost@pve", secret_env: T}',
        "user@realm!tokenname",
    ),
    _r(
        "token-id-newline",
        TOKEN,
        '    token: {id: "a@pve!x\\nX-Evil: 1", secret_env: T}',
        "user@realm!tokenname",
    ),
    _r(
        "token-id-colon",
        TOKEN,
        '    token: {id: "a:b@pve!x", secret_env: T}',
        "user@realm!tokenname",
    ),
    _r("token-inline", TOKEN, '    token: {id: "a@pve!xy", secret: abc}', "secret written inline"),
    _r(
        "token-env-name",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_env: "A-B"}',
        "environment variable name",
    ),
    _r(
        "token-env-digit",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_env: "1A"}',
        "environment variable name",
    ),
    _r("token-env-int", TOKEN, '    token: {id: "a@pve!xy", secret_env: 5}', "valid string"),
    _r(
        "token-both",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_env: A, secret_file: /x}',
        "exactly one of",
    ),
    _r(
        "token-file-empty",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_file: ""}',
        "must not be empty",
    ),
    _r(
        "token-file-nul",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_file: "/tmp/a\\0b"}',
        "control character",
    ),
    _r(
        "token-secret-newline",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_file: "{dir}/evil"}',
        "control character or line break",
        files={"evil": b"abc\nX-Evil: 1\n"},
    ),
    _r(
        "token-secret-env-newline",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_env: AIHOST_EVIL}',
        "control character or line break",
        env={"AIHOST_EVIL": "abc\r\nX-Evil: 1"},
    ),
    _r(
        "token-secret-fifo",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_file: "{dir}/fifo"}',
        "not a regular file",
    ),
    _r(
        "token-secret-not-utf8",
        TOKEN,
        '    token: {id: "a@pve!xy", secret_file: "{dir}/evil"}',
        "not UTF-8",
        files={"evil": b"\xff\xfe"},
    ),
    _r("password-user", TOKEN, '    password: {user: "root", secret_env: P}', "NAME@REALM"),
    _r(
        "password-inline",
        TOKEN,
        "    password: {user: root@pam, password: hunter2}",
        "written inline",
    ),
    _r("fingerprint-short", TLS, '    tls: {fingerprint: "AB:CD"}', "32 hex pairs"),
    _r(
        "fingerprint-newline",
        TLS,
        '    tls: {fingerprint: "' + ":".join(["AB"] * 32) + '\\n"}',
        "32 hex pairs",
    ),
    _r("fingerprint-nocolons", TLS, '    tls: {fingerprint: "' + "AB" * 32 + '"}', "32 hex pairs"),
    _r("tls-insecure", TLS, "    tls: {insecure: true}", "unknown key 'insecure'"),
    _r("ca-file-int", TLS, "    tls: {ca_file: 7}", "a path must be text"),
    _r("storage-comma", STORAGE, "    storage: {disks: 'local,lvm'}", "pve-storage-id"),
    _r("storage-short", STORAGE, "    storage: {snippets: l}", "pve-storage-id"),
    _r("storage-newline", STORAGE, '    storage: {iso: "local\\nx"}', "pve-storage-id"),
    _r("storage-dotdot", STORAGE, "    storage: {disks: ../etc}", "pve-storage-id"),
    _r("storage-equals", STORAGE, "    storage: {disks: local=1}", "pve-storage-id"),
    _r("storage-int", STORAGE, "    storage: {disks: 5}", "valid string"),
    _r("node-space", STORAGE, "    node: 'pve 1'", "pve-node"),
    _r("node-underscore", STORAGE, "    node: pve_1", "pve-node"),
    _r("node-leading-dash", STORAGE, "    node: -pve", "pve-node"),
    _r("host-key-not-node", 3, "  my_host:", "not a Proxmox node name"),
    _r("ssh-port", STORAGE, "    ssh: {port: 70000}", "less than or equal to 65535"),
    _r("ssh-host-space", STORAGE, "    ssh: {host: 'a b'}", "DNS name"),
    _r("ssh-user-newline", STORAGE, '    ssh: {user: "root\\nx"}', "should match pattern"),
    Case(
        "fixture-passwd",
        STORAGE,
        "not a simulator fixture",
        replace={API: "    api: sim", STORAGE: "    sim_fixture: /etc/passwd"},
    ),
    _r("delivery-bad", STORAGE, "    cloudinit_delivery: ftp", "'auto', 'iso' or 'snippet'"),
    # ---- GPUs ----
    _r(
        "gpu-name-space",
        GPU,
        "  rtx 4090: {host: pve1, mapping: rtx4090, vram_gb: 24}",
        "pve-configid",
    ),
    _r(
        "gpu-name-colon",
        GPU,
        "  'rtx:4090': {host: pve1, mapping: rtx4090, vram_gb: 24}",
        "pve-configid",
    ),
    _r(
        "gpu-name-one-char", GPU, "  g: {host: pve1, mapping: rtx4090, vram_gb: 24}", "pve-configid"
    ),
    _r(
        "gpu-name-digit",
        GPU,
        "  4090rtx: {host: pve1, mapping: rtx4090, vram_gb: 24}",
        "pve-configid",
    ),
    _r("gpu-name-path", GPU, "  ../x: {host: pve1, mapping: rtx4090, vram_gb: 24}", "pve-configid"),
    _r(
        "mapping-path",
        GPU,
        "  rtx4090: {host: pve1, mapping: ../../nodes/pve1/config, vram_gb: 24}",
        "pve-configid",
    ),
    _r(
        "mapping-comma", GPU, "  rtx4090: {host: pve1, mapping: 'a,b', vram_gb: 24}", "pve-configid"
    ),
    _r(
        "mapping-equals",
        GPU,
        "  rtx4090: {host: pve1, mapping: 'x=y', vram_gb: 24}",
        "pve-configid",
    ),
    _r(
        "mapping-newline",
        GPU,
        '  rtx4090: {host: pve1, mapping: "ab\\ncd", vram_gb: 24}',
        "pve-configid",
    ),
    _r(
        "vram-inf", GPU, "  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: .inf}", "finite number"
    ),
    _r(
        "vram-nan", GPU, "  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: .nan}", "finite number"
    ),
    _r(
        "vram-negative",
        GPU,
        "  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: -1}",
        "greater than 0",
    ),
    _r(
        "vram-string",
        GPU,
        "  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: '24'}",
        "valid number",
    ),
    _r(
        "vram-bool", GPU, "  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: true}", "valid number"
    ),
    _r(
        "vram-huge",
        GPU,
        "  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: 1.0e+9}",
        "less than or equal",
    ),
    _r(
        "vram-yaml11-string",
        GPU,
        "  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: 1e9}",
        "valid number (got '1e9')",
    ),
    _r(
        "pci-newline",
        GPU,
        '  rtx4090: {host: pve1, pci: "0000:01:00\\n", vram_gb: 24}',
        "PCI address",
    ),
    _r("pci-int", GPU, "  rtx4090: {host: pve1, pci: 100, vram_gb: 24}", "PCI address"),
    _r(
        "pci-semicolon",
        GPU,
        "  rtx4090: {host: pve1, pci: '0000:01:00;0000:02:00', vram_gb: 24}",
        "PCI address",
    ),
    _r(
        "gpu-both",
        GPU,
        "  rtx4090: {host: pve1, mapping: rtx4090, pci: '01:00', vram_gb: 24}",
        "exactly one of",
    ),
    _r(
        "gpu-model-newline",
        GPU,
        '  rtx4090: {host: pve1, mapping: rtx4090, vram_gb: 24, model: "a\\nb"}',
        "line break",
    ),
    _r(
        "gpu-host-unknown",
        GPU,
        "  rtx4090: {host: pve9, mapping: rtx4090, vram_gb: 24}",
        "unknown host",
    ),
    # ---- VM names and values ----
    _r("vm-name-space", VMNAME, "  llm box:", "DNS name"),
    _r("vm-name-underscore", VMNAME, "  llm_box:", "DNS name"),
    _r("vm-name-dash", VMNAME, "  -llm:", "DNS name"),
    _r("vm-name-long", VMNAME, "  " + "a" * 64 + ":", "DNS name"),
    _r("vm-name-dotdot", VMNAME, "  llm..box:", "DNS name"),
    _r("vm-name-comma", VMNAME, "  'llm,box':", "DNS name"),
    _r("vm-host-int", HOST, "    host: 5", "valid string"),
    _r("template-space", TEMPLATE, "    template: ubuntu 2404", "DNS name"),
    _r("template-comma", TEMPLATE, "    template: 'a,b'", "DNS name"),
    _r("template-newline", TEMPLATE, '    template: "a\\nb"', "DNS name"),
    _r(
        "image-dotdot",
        TEMPLATE,
        "    image: local:import/../../etc/passwd",
        "image must be a volume",
    ),
    _r("image-iso", TEMPLATE, "    image: local:iso/x.qcow2", "image must be a volume"),
    _r("image-short-storage", TEMPLATE, "    image: l:import/x.qcow2", "image must be a volume"),
    _r("vm-gpu-space", VMGPU, "    gpu: rtx 4090", "pve-configid"),
    _r("vm-gpu-list-bad", VMGPU, "    gpu: [rtx4090, 'a,b']", "pve-configid"),
    _r("cores-string", CORES, "    cores: '4'", "valid integer"),
    _r("cores-bool", CORES, "    cores: true", "valid integer"),
    _r("cores-float", CORES, "    cores: 4.5", "valid integer"),
    _r("cores-zero", CORES, "    cores: 0", "greater than or equal to 1"),
    _r("cores-huge", CORES, "    cores: 100000", "less than or equal to 512"),
    _r("cores-inf", CORES, "    cores: .inf", "valid integer"),
    _r("memory-tiny", MEMORY, "    memory_gb: 0.0001", "16 MiB to 4 TiB"),
    _r("memory-zero", MEMORY, "    memory_gb: 0", "16 MiB to 4 TiB"),
    _r("memory-negative", MEMORY, "    memory_gb: -1", "16 MiB to 4 TiB"),
    _r("memory-1e8", MEMORY, "    memory_gb: 1.0e+8", "16 MiB to 4 TiB"),
    _r("memory-5000", MEMORY, "    memory_gb: 5000", "16 MiB to 4 TiB"),
    _r("memory-inf", MEMORY, "    memory_gb: .inf", "finite number"),
    _r("memory-nan", MEMORY, "    memory_gb: .nan", "finite number"),
    _r("memory-bool", MEMORY, "    memory_gb: true", "valid number"),
    _r("memory-string", MEMORY, "    memory_gb: '16'", "valid number"),
    _r("disk-huge", DISK, "    disk_gb: 99999999999", "less than or equal to"),
    _r("disk-small", DISK, "    disk_gb: 3", "greater than or equal to 4"),
    _r("disk-string", DISK, "    disk_gb: '40'", "valid integer"),
    _r("disk-float", DISK, "    disk_gb: 40.5", "valid integer"),
    _r("disk-bool", DISK, "    disk_gb: true", "valid integer"),
    _r("runtime-newline", RUNTIME, '    runtime: "ollama\\n"', "'ollama', 'vllm'"),
    _r("runtime-case", RUNTIME, "    runtime: OLLAMA", "'ollama', 'vllm'"),
    _r("models-newline", MODELS, '    models: ["ok\\nruncmd: [reboot]"]', "line break"),
    _r("models-cr", MODELS, '    models: ["a\\rb"]', "line break"),
    _r("models-u2028", MODELS, '    models: ["a\\u2028b"]', "line break"),
    _r("models-string", MODELS, "    models: llama3.1:8b", "valid list"),
    _r("models-int", MODELS, "    models: [1]", "valid string"),
    _r("models-empty", MODELS, '    models: [""]', "at least 1 character"),
    _r("models-long", MODELS, '    models: ["' + "a" * 300 + '"]', "at most 256 characters"),
    _r(
        "bridge-injection",
        NETWORK,
        "    network: {bridge: 'vmbr0,tag=99,rate=1', ip: dhcp}",
        "pve-bridge-id",
    ),
    _r("bridge-semicolon", NETWORK, "    network: {bridge: 'vmbr0;x'}", "pve-bridge-id"),
    _r("bridge-space", NETWORK, "    network: {bridge: 'vm br0'}", "pve-bridge-id"),
    _r("bridge-newline", NETWORK, '    network: {bridge: "vmbr0\\n"}', "pve-bridge-id"),
    _r("bridge-empty", NETWORK, "    network: {bridge: ''}", "pve-bridge-id"),
    _r("bridge-unicode", NETWORK, "    network: {bridge: 'vmbr\u00e9'}", "pve-bridge-id"),
    _r("vlan-zero", NETWORK, "    network: {vlan: 0}", "greater than or equal to 1"),
    _r("vlan-4095", NETWORK, "    network: {vlan: 4095}", "less than or equal to 4094"),
    _r("vlan-string", NETWORK, "    network: {vlan: '99'}", "valid integer"),
    _r("ip-no-prefix", NETWORK, "    network: {ip: 1.2.3.4}", "prefix"),
    _r("ip-prefix-33", NETWORK, "    network: {ip: 1.2.3.4/33}", "ip must be dhcp"),
    _r("ip-injection", NETWORK, "    network: {ip: 'dhcp,gw=1.1.1.1'}", "ip must be dhcp"),
    _r(
        "gateway-injection",
        NETWORK,
        "    network: {ip: 1.2.3.4/24, gateway: '1.1.1.1,ip6=x'}",
        "gateway must be",
    ),
    _r(
        "nameserver-name",
        NETWORK,
        "    network: {nameserver: 'dns.example'}",
        "nameserver must be IP",
    ),
    _r(
        "nameserver-newline",
        NETWORK,
        '    network: {nameserver: "1.1.1.1\\nsearch evil"}',
        "line break",
    ),
    _r("nameserver-empty", NETWORK, "    network: {nameserver: ''}", "at least one IP"),
    _r("user-upper", USER, "    user: {name: Root}", "should match pattern"),
    _r("user-newline", USER, '    user: {name: "a\\nb"}', "should match pattern"),
    _r(
        "ssh-key-newline",
        USER,
        '    user: {ssh_keys: ["ssh-ed25519 AAAA x\\nssh-rsa BBBB evil"]}',
        "line break",
    ),
    _r("ssh-key-garbage", USER, '    user: {ssh_keys: ["not a key"]}', "must be public keys"),
    _r("ssh-key-string", USER, '    user: {ssh_keys: "ssh-ed25519 AAAA"}', "valid list"),
    _r("user-password-inline", USER, "    user: {password: hunter2}", "written inline"),
    _vm("vmid-low", "vmid: 99", "greater than or equal to 100"),
    _vm("vmid-high", "vmid: 1000000000", "less than or equal to 999999999"),
    _vm("vmid-string", "vmid: '120'", "valid integer"),
    _vm("vmid-float", "vmid: 120.5", "valid integer"),
    _vm("vmid-bool", "vmid: true", "valid integer"),
    _vm("listen-newline", 'listen: "0.0.0.0\\n"', "listen must be an IP"),
    _vm("listen-name", "listen: localhost", "listen must be an IP"),
    _vm("port-zero", "port: 0", "greater than or equal to 1"),
    _vm("port-high", "port: 70000", "less than or equal to 65535"),
    _vm("port-string", "port: '8080'", "valid integer"),
    _vm("cuda-string", "cuda: 'yes'", "valid boolean"),
    _vm("cuda-int", "cuda: 1", "valid boolean"),
    _vm("context-small", "context: 10", "greater than or equal to 256"),
    _vm("context-huge", "context: 1000000000", "less than or equal to"),
    _vm("start-timeout-small", "start_timeout: 5", "greater than or equal to 10"),
    _vm("start-timeout-huge", "start_timeout: 10000000", "less than or equal to 86400"),
    _vm("tag-space", "tags: ['a b']", "pve-tag"),
    _vm("tag-comma", "tags: ['a,b']", "pve-tag"),
    _vm("tag-semicolon", "tags: ['a;b']", "pve-tag"),
    _vm("hf-token-inline", "hf_token: {secret: hf_abc}", "written inline"),
    _vm("hf-token-env-name", "hf_token: {secret_env: 'HF-TOKEN'}", "environment variable name"),
    _vm("hf-token-no-opt-in", "hf_token: {secret_env: AIHOST_HF}", "store_in_user_data: true"),
    _vm(
        "hf-token-newline",
        "hf_token: {secret_env: AIHOST_HF, store_in_user_data: true}",
        "control character or line break",
        env={"AIHOST_HF": "hf_abc\nEVIL=1"},
    ),
    _vm("vllm-util-nan", "vllm: {gpu_memory_utilization: .nan}", "finite number"),
    _vm("vllm-len-string", "vllm: {max_model_len: '8192'}", "valid integer"),
    _vm("model-path-relative", "llamacpp: {model_path: models/x.gguf}", "should match pattern"),
    _vm("model-path-newline", 'llamacpp: {model_path: "/a\\nb"}', "line break"),
    _vm("model-url-ftp", "llamacpp: {model_url: 'ftp://x/y.gguf'}", "should match pattern"),
    _vm("model-url-newline", 'llamacpp: {model_url: "https://x/\\ny"}', "line break"),
    _vm("distro-unknown", "distro: arch", "'ubuntu-24.04'"),
    _vm("unknown-key", "memroy_gb: 1", "did you mean 'memory_gb'"),
    Case("version-2", 1, "Input should be 1", replace={1: "version: 2"}),
    Case("version-string", 1, "Input should be 1", replace={1: "version: '1'"}),
    Case(
        "defaults-coercion",
        VM_LINE + 1,
        "(merged into vms.llm-box): Input should be a valid integer",
        replace={CORES: "    # cores: from the defaults"},
        append=("defaults:", "  vm: {cores: '4'}"),
    ),
    Case(
        "defaults-overridden-coercion",
        VM_LINE + 1,
        "defaults.vm.disk_gb: Input should be a valid integer",
        append=("defaults:", "  vm: {disk_gb: '40'}"),
    ),
    Case(
        "defaults-overridden-bridge",
        VM_LINE + 1,
        "pve-bridge-id",
        append=("defaults:", "  vm: {network: {bridge: 'vmbr0,tag=1'}}"),
    ),
    Case(
        "defaults-unknown-key",
        VM_LINE + 1,
        "unknown key 'memroy_gb'",
        append=("defaults:", "  vm: {memroy_gb: 1}"),
    ),
    Case("templates-dir-newline", VM_LINE, "line break", append=('templates_dir: "a\\nb"',)),
]


@dataclass
class CliCase:
    """One hostile invocation (against the valid BASE) and what its one line must name."""

    id: str
    args: tuple[str, ...]
    fragment: str


def _cli(id_: str, args: str, fragment: str) -> CliCase:
    return CliCase(id_, tuple(args.split(" ")), fragment)


CLI_CASES: list[CliCase] = [
    *[
        _cli(f"up-agent-timeout-{v}", f"vm up llm-box --agent-timeout {v}", "'--agent-timeout'")
        for v in ("nan", "NaN", "inf", "-inf", "-1", "0", "1e9", "abc", "1e309", "0x10")
    ],
    *[
        _cli(f"down-timeout-{v}", f"vm down llm-box --timeout {v}", "'--timeout'")
        for v in ("nan", "-1", "0", "inf", "x", "-0.5")
    ],
    *[
        _cli(f"swap-timeout-{v}", f"gpu swap rtx4090 --to llm-box --timeout {v}", "'--timeout'")
        for v in ("nan", "-5", "inf", "0")
    ],
    *[
        _cli(
            f"swap-agent-timeout-{v}",
            f"gpu swap rtx4090 --to llm-box --agent-timeout {v}",
            "'--agent-timeout'",
        )
        for v in ("nan", "-1", "0", "inf")
    ],
    *[
        _cli(f"release-timeout-{v}", f"gpu release rtx4090 --timeout {v}", "'--timeout'")
        for v in ("nan", "-1", "inf")
    ],
    *[
        _cli(f"adopt-vmid-{v}", f"vm adopt llm-box --vmid {v}", "'--vmid'")
        for v in ("5", "99", "1000000000", "-1", "abc", "1.5", "nan")
    ],
    *[
        _cli(f"serve-port-{v}", f"sim serve --port {v}", "'--port'")
        for v in ("70000", "-1", "abc", "65536", "nan")
    ],
    *[
        _cli(f"serve-sftp-port-{v}", f"sim serve --sftp-port {v}", "'--sftp-port'")
        for v in ("70000", "-2")
    ],
    _cli("serve-fixture-passwd", "sim serve --fixture /etc/passwd", "'--fixture'"),
    _cli("serve-fixture-zero", "sim serve --fixture /dev/zero", "'--fixture'"),
    _cli("serve-fixture-dir", "sim serve --fixture {dir}", "'--fixture'"),
    _cli("serve-fixture-fifo", "sim serve --fixture {dir}/fifo", "'--fixture'"),
    _cli("serve-fixture-laughs", "sim serve --fixture {dir}/laughs.yaml", "'--fixture'"),
    _cli("serve-fixture-missing", "sim serve --fixture no-such-world", "'--fixture'"),
    _cli("serve-state-file", "sim serve --state /etc/passwd", "'--state'"),
    _cli("serve-busy-port", "sim serve --port {busy_port}", "'--port'"),
    *[
        _cli(f"fit-vram-{v}", f"models fit llama3.1:8b --vram {v}", "'--vram'")
        for v in ("nan", "inf", "-1", "0")
    ],
    _cli("fit-context-0", "models fit llama3.1:8b --context 0", "'--context'"),
    _cli("fit-parallel-0", "models fit llama3.1:8b --parallel 0", "'--parallel'"),
    _cli("list-vram-nan", "models list --vram nan", "'--vram'"),
    _cli("output-xml", "-o xml vm list", "'-o' / '--output'"),
    _cli("up-unknown-option", "vm up llm-box --insecure", "--insecure"),
    _cli("up-unknown-vm", "vm up no-such-vm", "no VM named 'no-such-vm'"),
    _cli("up-name-and-all", "vm up llm-box --all", "not both"),
    _cli("swap-unknown-target", "gpu swap rtx4090 --to no-such-vm", "no-such-vm"),
    _cli("swap-unknown-gpu", "gpu swap no-such-gpu --to llm-box", "no-such-gpu"),
    *[
        _cli(f"map-pci-{i}", f"gpu map rtx4090 --pci {v}", "'--pci'")
        for i, v in enumerate(("0000:01:00,x", "01:00.9", "zz:00", "0000:01:00;0000:02:00"))
    ],
    _cli("inventory-dev-zero", "-i /dev/zero vm up llm-box", "/dev/zero"),
    _cli("inventory-dir", "-i {dir} vm up llm-box", "a directory"),
    _cli("inventory-fifo", "-i {dir}/fifo vm up llm-box", "FIFO"),
]


def materialize(case: Case, folder: Path, values: dict[str, str]) -> Path:
    """Write the case's inventory (and its extra files) under folder; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    fill = {**values, "dir": str(folder)}
    (folder / "token").write_text(values["token_secret"] + "\n")
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    if not (folder / "fifo").exists():
        os.mkfifo(folder / "fifo")
    path = folder / "inventory.yaml"
    if case.raw is not None:
        path.write_bytes(case.raw)
        return path
    lines = BASE.format(**fill).splitlines()
    for number, text in case.replace.items():
        lines[number - 1] = text.replace("{dir}", str(folder))
    lines.extend(case.append)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def materialize_base(folder: Path, values: dict[str, str]) -> Path:
    """The valid BASE inventory, with the files the CLI cases name next to it."""
    path = materialize(Case("base", 0, ""), folder, values)
    (folder / "laughs.yaml").write_bytes(_laughs(8))
    return path


def cli_args(case: CliCase, inventory: Path, fill: dict[str, str]) -> list[str]:
    """The argument list of a CLI case (with -i BASE unless the case names its own)."""
    args = [a.format(**fill) for a in case.args]
    return args if args[0] == "-i" else ["-i", str(inventory), *args]


def peak_rss_kib() -> int:
    """This process's peak resident set (KiB): VmHWM, which starts afresh at exec, where
    ru_maxrss would carry the parent's peak (the pytest process) into the child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _measure(args: list[str], env: dict[str, str]) -> dict[str, object]:
    from aihost_testing import run_aihost

    rss_before = peak_rss_kib()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = run_aihost(*args, env=env)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = peak_rss_kib() - rss_before
    return {
        "code": result.exit_code,
        "stderr": result.stderr,
        "seconds": seconds,
        "peak_bytes": peak,
        "rss_growth_kib": rss_growth,
    }


def run_all(spec: dict[str, str]) -> dict[str, object]:
    """Run every case in this process; results per case and the process's peak RSS."""
    from aihost_testing import run_aihost

    root = Path(spec["dir"])
    out: dict[str, object] = {}
    base = materialize_base(root / "base", spec)
    run_aihost("-i", str(base), "inventory", "check")  # imports paid once, before measuring
    for case in INVENTORY_CASES:
        path = materialize(case, root / case.id, spec)
        out[case.id] = _measure(["-i", str(path), "inventory", "check"], case.env)
    for cli_case in CLI_CASES:
        args = cli_args(cli_case, base, {**spec, "dir": str(base.parent)})
        out["cli:" + cli_case.id] = _measure(args, {})
    return {"cases": out, "maxrss_kib": peak_rss_kib()}


if __name__ == "__main__":
    print(json.dumps(run_all(json.loads(sys.argv[1]))))
