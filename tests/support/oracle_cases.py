"""Parameter values to compare the simulator's checks with Proxmox's (tests/sim/test_pve_oracle.py).

For one declared parameter (provision.sim.paramspec shape) `values` gives valid,
boundary and hostile values: empty, blanks, too long, unicode (letters and non-ASCII
digits), commas, `=` and `;` inside property strings, duplicate and unknown keys,
negative, huge, floats for integers, bad booleans, newlines, NULs, injection such as
`vmbr0,tag=99`, shell and path tricks. `sample` gives one valid value, for the other
required parameters of a request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

UPID = "UPID:pve1:0000A1B2:0012C3D4:6650F00D:qmclone:9000:root@pam:"
GENERIC = [
    "",
    " ",
    "a",
    "0",
    "1",
    "-1",
    "1.5",
    "1e3",
    "+1",
    "abc",
    "\u00fc",
    "\u65e5\u672c",
    "a,b",
    "a=b",
    "a;b",
    "a b",
    "a\nb",
    "1\n",
    "a\n",
    "\na",
    "a\0b",
    "a\tb",
    "vmbr0,tag=99",
    "$(reboot)",
    "`id`",
    "'; DROP",
    "../x",
    "a/b",
    "%41",
    "0x10",
    "\u0663",
    "\uff11",
    "-",
    "_",
    "x" * 300,
    "a\u00a0b",
]
NUMERIC = [
    "99999999999999999999",
    "-0",
    "007",
    "1.0",
    "1.",
    ".5",
    "-.5",
    "1e-3",
    "NaN",
    "inf",
    "2147483648",
    "-2147483649",
    " 1",
    "1 ",
    "0100",
    "1\n\n",
    "\n1",
]
BOOLEAN = ["true", "false", "yes", "on", "off", "2", "TRUE", "On", "00"]
FORMAT_SAMPLES: dict[str, list[str]] = {
    "pve-node": ["pve1", "pve-2", "a", "1", "pve_1", "pve1.lan", "-pve"],
    "pve-vmid": ["100", "999999999", "1000000000", "099"],
    "pve-configid": ["gpu0", "rtx4090", "a_b-c", "A1", "0gpu", "gpu.0"],
    "pve-configid-list": ["net0,hostpci0", "net0;ide2 scsi1", "net0,,ide2", "net0,0x", ","],
    "pve-storage-id": ["local", "local-lvm", "a.b", "ab-", "l"],
    "pve-volume-id": ["local:snippets/a.yaml", "local:iso/x.iso", "local:", ":x", "l:x"],
    "dns-name": ["llm-box", "a.example.com", "a..b", "a.", "-a", "a-"],
    "mac-addr": [
        "BC:24:11:5A:90:00",
        "bc:24:11:5a:90:00",
        "01:00:00:00:00:00",
        "BC:24:11:5A:90",
        "BC-24-11-5A-90-00",
    ],
    "pve-bridge-id": ["vmbr0", "vmbr0.10", "vmbr0,tag=99", "br_\u00e9"],
    "pve-tag-list": ["aihost", "aihost;gpu", "a,b c", "+a", "a+b", "A.b-c_d", "a;;b"],
    "urlencoded": [quote("ssh-ed25519 AAAAC3Nz x@y\n", safe=""), "ssh-ed25519 AAAA", "%zz"],
    "ipv4": ["192.168.1.1", "256.1.1.1", "1.2.3", "01.2.3.4", "::1"],
    "ipv6": ["fe80::1", "2001:db8::1", "::", "1.2.3.4", "fe80::1%eth0", "gggg::1"],
    "pve-ipv4-config": [
        "dhcp",
        "manual",
        "192.168.1.10/24",
        "192.168.1.10/33",
        "192.168.1.10",
        "auto",
        "192.168.1.10/024",
        "10.0.0.1/4",
        "10.0.0.1/\u0662\u0664",
        "DHCP",
        "dhcp\n",
    ],
    "pve-ipv6-config": [
        "auto",
        "dhcp",
        "manual",
        "2001:db8::5/64",
        "2001:db8::5/129",
        "2001:db8::5",
        "2001:db8::5/7",
        "fe80::1%eth0/64",
        "::ffff:1.2.3.4/96",
        "1::2::3/64",
    ],
    "CIDR": ["10.0.0.0/8", "fe80::/64", "10.0.0.0", "10.0.0.0/40", "10.0.0.0/7", "::/0"],
    "address-list": ["1.1.1.1 8.8.8.8", "1.1.1.1,::1", "1.1.1.1;x", "dns.example"],
    "disk-size": ["10G", "1.5T", "100", "10GiB", "10g", "-1G", "1.G"],
    "string-list": ["0x0300,0x0604", "a b"],
    "storage-pair-list": ["local:local-lvm", "local", "1"],
    "pve-iface": ["eth0", "vmbr0.10", "e"],
    "pve-startup-order": ["order=1,up=30", "1", "up=x"],
    "ipv4mask": ["255.255.255.0"],
}
NAME_SAMPLES: dict[str, list[str]] = {
    "upid": [UPID, "UPID:pve1:x"],
    "volume": ["local:iso/x.iso", "local-lvm:vm-100-disk-0"],
    "size": ["+1G", "10G", "1.5G", "+0.5T", "10GiB"],
    "id": ["10de:2684", "10DE:2684", "10de:268"],
    "subsystem-id": ["1043:889d"],
    "path": ["0000:01:00", "0000:01:00.0;0000:02:00.0", "01:00", "/vms/100", "/"],
    "userid": ["aihost@pve!prov", "root@pam", "root", "a@b!"],
    "host": ["0000:01:00", "01:00.0", "0000:01:00.0;0000:01:00.1", "spice", "046d:c52b", "1-2.3"],
    "device-id": ["0x2684", "0x26841"],
    "sub-device-id": ["0x889d"],
    "vendor-id": ["0x10de"],
    "sub-vendor-id": ["0x1043"],
    "romfile": ["x.rom", "a;b"],
    "mdev": ["nvidia-1", "a.b"],
    "trunks": ["10;20-30", "10-", "10,20"],
    "cpus": ["0-3", "0;2"],
    "hostnodes": ["0", "0-1"],
    "startdate": ["now", "2024-01-01", "2024-01-01T10:00:00"],
    "vmgenid": ["1", "0", "c4a7ae8f-3b4c-4a21-9a59-1f1e7c3c9a11"],
    "legacy": ["cdn", "acdn", "x", "acdnx"],
    "hv-vendor-id": ["proxmox", "a" * 13],
    "product": ["QEMU HARDDISK", "a" * 17],
    "vendor": ["ACME", "a" * 9],
    "wwn": ["0x5000c50015ea71ac", "0x5000"],
    "nets-host-mtu": ["net0=1500", "net0=1500,net1=9000", "net0"],
    "serial": ["socket", "/dev/ttyS0", "/dev/"],
    "parallel": ["/dev/parport0", "/dev/usb/lp0", "/dev/lp0"],
    "tmpfilename": ["/var/tmp/pveupload-abc123"],
    "bootdisk": ["scsi0", "nvme0"],
    "name": ["llm-box", "a-1"],
    "filename": ["x.iso", "aihost-ci-abc.iso"],
    "command": ["nvidia-smi", "/usr/local/bin/aihost-health"],
    "type": ["q35", "pc-q35-8.1", "pc-i440fx-9.0+pve1", "virt", "std", "user"],
    "cputype": ["host", "x86-64-v2-AES"],
    "flags": ["+aes", "-pcid;+spec-ctrl"],
    "description": ["aihost: holder=llm-box"],
    "digest": ["0" * 40, "0" * 64],
    "checksum": ["abc"],
    "password": ["secret"],
    "username": ["root@pam"],
    "memory": ["32768", "16", "15"],
    "current": ["32768", "16", "15"],
}


def _bounds(entry: dict[str, Any]) -> list[str]:
    out = []
    for key in ("minimum", "maximum"):
        if key in entry:
            bound = float(entry[key])
            text = str(int(bound)) if bound.is_integer() else str(bound)
            out += [text, _num(bound - 1), _num(bound + 1), _num(bound - 0.5)]
    return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def scalar_values(name: str, entry: dict[str, Any]) -> list[str]:
    """Valid, boundary and hostile values of one scalar parameter or sub-key."""
    out = list(GENERIC)
    kind = entry.get("type")
    if kind in ("integer", "number"):
        out += NUMERIC + _bounds(entry)
    if kind == "boolean":
        out += BOOLEAN
    for value in entry.get("enum") or []:
        out += [str(value), str(value).upper(), f"{value} ", f"{value},x"]
    if "maxLength" in entry:
        size = int(entry["maxLength"])
        out += ["x" * size, "x" * (size + 1), "\u00e9" * size]
    fmt = entry.get("format")
    if isinstance(fmt, str):
        base = fmt.removesuffix("-list").removesuffix("-opt")
        out += FORMAT_SAMPLES.get(fmt, []) + FORMAT_SAMPLES.get(base, [])
        if fmt.endswith("-list") and base in FORMAT_SAMPLES:
            first = FORMAT_SAMPLES[base]
            out += [
                " ".join(first[:2]),
                ";".join(first[:2]),
                ",".join(first[:2]) + ",",
                "\0".join(first[:2]),
            ]
    out += NAME_SAMPLES.get(name.partition("[")[0], [])
    return list(dict.fromkeys(out))


def sample(name: str, entry: dict[str, Any], hash_formats: dict[str, Any]) -> Any:
    """One valid value (a list for arrays)."""
    if entry.get("type") == "array":
        return [sample(name, entry["items"], hash_formats)]
    fmt = entry.get("format")
    fmt = hash_formats.get(fmt, fmt) if isinstance(fmt, str) else fmt
    if isinstance(fmt, dict):
        return base_string(fmt, hash_formats)
    if isinstance(fmt, str) and fmt.removesuffix("-list") in FORMAT_SAMPLES:
        return FORMAT_SAMPLES[fmt.removesuffix("-list")][0]
    if entry.get("enum"):
        return str(entry["enum"][0])
    if entry.get("type") in ("integer", "number"):
        return _num(float(entry.get("minimum", 1)))
    if entry.get("type") == "boolean":
        return "1"
    return NAME_SAMPLES.get(name.partition("[")[0], ["x"])[0]


def base_parts(fmt: dict[str, Any], hash_formats: dict[str, Any]) -> dict[str, str]:
    """The required keys of a property string with valid values (default key first)."""
    parts: dict[str, str] = {}
    for key, sub in sorted(fmt.items(), key=lambda kv: not kv[1].get("default_key")):
        if key.startswith("_") or "alias" in sub or sub.get("optional"):
            continue
        parts[key] = str(sample(key, sub, hash_formats))
    return parts


def _render(parts: dict[str, str], fmt: dict[str, Any]) -> str:
    return ",".join(v if fmt[k].get("default_key") else f"{k}={v}" for k, v in parts.items())


def base_string(fmt: dict[str, Any], hash_formats: dict[str, Any]) -> str:
    """A valid property string with only the required keys (the default key bare)."""
    return _render(base_parts(fmt, hash_formats), fmt)


def _joiner(parts: dict[str, str], fmt: dict[str, Any]) -> Callable[..., str]:
    def join(extra: str, without: str = "") -> str:
        rest = _render({k: v for k, v in parts.items() if k != without}, fmt)
        return f"{rest},{extra}" if rest else extra

    return join


def property_values(fmt: dict[str, Any], hash_formats: dict[str, Any]) -> list[str]:
    """Property strings: each sub-key with each of its values, plus broken structure."""
    parts = base_parts(fmt, hash_formats)
    base = _render(parts, fmt)
    join = _joiner(parts, fmt)
    out = [
        base,
        "",
        ",",
        f"{base},",
        f",{base}",
        f"{base},,",
        join("nosuchkey=1"),
        "=1",
        join("=1"),
        join("k="),
        join("a b"),
        f"{base}\n",
        f"{base},\n",
    ]
    for key, sub in fmt.items():
        if key.startswith("_"):
            continue
        if "alias" in sub:
            out += [
                join(f"{key}=BC:24:11:5A:90:00", sub.get("keyAlias", "")),
                f"{key}=BC:24:11:5A:90:00",
            ]
            continue
        good = str(sample(key, sub, hash_formats))
        needs = sub.get("requires")
        if isinstance(needs, str) and needs not in parts:  # e.g. ipconfig gw6 needs ip6
            join = _joiner({**parts, needs: str(sample(needs, fmt[needs], hash_formats))}, fmt)
        else:
            join = _joiner(parts, fmt)
        for value in scalar_values(key, sub):
            out.append(join(f"{key}={value}", key))
            if sub.get("default_key"):
                rest = _render({k: v for k, v in parts.items() if k != key}, fmt)
                out.append(f"{value},{rest}" if rest else value)
        out += [join(f"{key}={good},{key}={good}", key), join(f"{key}={good}\n", key)]
    return list(dict.fromkeys(out))
