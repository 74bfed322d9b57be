"""nvidia-smi and lspci output of the simulated guest (part of the guest MODEL, not a GPU).

GPUs are dicts {"name", "memory_mib", "pci"} as the simulator passes them; inside the guest
they sit behind q35 PCIe root ports, so GPU i appears at bus i+1 (i440fx: slot 0x10+i).
"""

from __future__ import annotations

import uuid
from typing import Any

FAILED = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)
INVALID_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.\n"
CUDA_OF_BRANCH = {
    "470": "11.4",
    "535": "12.2",
    "550": "12.4",
    "560": "12.6",
    "565": "12.7",
    "570": "12.8",
    "575": "12.9",
    "580": "13.0",
}
# (device id, chip, marketing name) by a substring of the GPU's name
KNOWN_DEVICES = [
    ("4090", "2684", "AD102", "GeForce RTX 4090"),
    ("3090", "2204", "GA102", "GeForce RTX 3090"),
    ("3060", "2504", "GA106", "GeForce RTX 3060 Lite Hash Rate"),
    ("5090", "2b85", "GB202", "GeForce RTX 5090"),
    ("A6000", "2230", "GA102GL", "RTX A6000"),
    ("A4000", "24b0", "GA104GL", "RTX A4000"),
    ("L40S", "26b9", "AD102GL", "L40S"),
]


def guest_bus(index: int, q35: bool = True) -> str:
    """The guest PCI address (bus:dev.fn) of the index-th passed-through GPU."""
    return f"{index + 1:02x}:00.0" if q35 else f"00:{0x10 + index:02x}.0"


def gpu_uuid(vmid: int, gpu: dict[str, Any]) -> str:
    """A stable GPU UUID in nvidia-smi's form."""
    seed = f"{gpu.get('pci', '')}/{gpu.get('name', '')}/{vmid}"
    return "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def _fields(
    index: int, gpu: dict[str, Any], driver: str, vmid: int, count: int
) -> dict[str, tuple[str, str]]:
    """query field -> (value, unit suffix)."""
    total = int(gpu.get("memory_mib", 0))
    used = 1 if total else 0
    values = {
        "index": (str(index), ""),
        "count": (str(count), ""),
        "name": (str(gpu.get("name", "")), ""),
        "driver_version": (driver, ""),
        "memory.total": (str(total), " MiB"),
        "memory.used": (str(used), " MiB"),
        "memory.free": (str(max(total - used, 0)), " MiB"),
        "pci.bus_id": ("00000000:" + guest_bus(index).upper(), ""),
        "uuid": (gpu_uuid(vmid, gpu), ""),
        "temperature.gpu": ("34", ""),
        "utilization.gpu": ("0", " %"),
    }
    values["gpu_name"] = values["name"]
    values["gpu_bus_id"] = values["pci.bus_id"]
    values["gpu_uuid"] = values["uuid"]
    return values


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


def nvidia_smi(
    args: list[str], driver: str, gpus: list[dict[str, Any]], gpu_ok: bool, vmid: int
) -> tuple[int, str, str]:
    """Exit code, stdout, stderr of nvidia-smi with the driver installed."""
    if not gpu_ok:
        return 9, FAILED, ""
    query = _option(args, "--query-gpu")
    if query is not None:
        return _query(query, _option(args, "--format"), driver, gpus, vmid)
    if args in (["-L"], ["--list-gpus"]):
        return (
            0,
            "".join(
                f"GPU {i}: {g.get('name', '')} (UUID: {gpu_uuid(vmid, g)})\n"
                for i, g in enumerate(gpus)
            ),
            "",
        )
    if not args:
        return 0, _table(driver, gpus), ""
    return 2, INVALID_ARGS, ""


def _query(
    query: str, fmt: str | None, driver: str, gpus: list[dict[str, Any]], vmid: int
) -> tuple[int, str, str]:
    if fmt is None or fmt.split(",")[0] != "csv":
        return 2, "", "Option --format is required with --query-gpu (e.g. --format=csv)\n"
    flags = set(fmt.split(",")[1:])
    names = [n.strip() for n in query.split(",") if n.strip()]
    rows = [_fields(i, g, driver, vmid, len(gpus)) for i, g in enumerate(gpus)]
    for name in names:
        if name not in rows[0]:
            return 2, f'Field "{name}" is not a valid field to query.\n\n', ""
    lines = []
    if "noheader" not in flags:
        lines.append(
            ", ".join(
                f"{n}{' [' + rows[0][n][1].strip() + ']' if rows[0][n][1] else ''}" for n in names
            )
        )
    for row in rows:
        lines.append(
            ", ".join(row[n][0] + ("" if "nounits" in flags else row[n][1]) for n in names)
        )
    return 0, "".join(line + "\n" for line in lines), ""


def _table(driver: str, gpus: list[dict[str, Any]]) -> str:
    """The default nvidia-smi summary (no process list, no timestamp)."""
    cuda = CUDA_OF_BRANCH.get(driver.split(".")[0], "12.4")
    cells = ("-" * 41, "-" * 24, "-" * 22)
    rule = "+" + "+".join(cells) + "+"
    lines = [
        "+" + "-" * 89 + "+",
        f"| NVIDIA-SMI {driver:<21} Driver Version: {driver:<15} CUDA Version: {cuda:<8} |",
        "|" + "+".join(cells) + "|",
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A "
        "| Volatile Uncorr. ECC |",
        "|" + "+".join("=" * len(c) for c in cells) + "|",
    ]
    for i, gpu in enumerate(gpus):
        name = str(gpu.get("name", ""))[:30]
        usage = f"1MiB / {int(gpu.get('memory_mib', 0))}MiB"
        bus = "00000000:" + guest_bus(i).upper()
        lines.append(f"| {i:>3}  {name:<30} Off | {bus:>18} Off | {'Off':>20} |")
        lines.append(f"| {'0%   34C    P8':<39} | {usage:>22} | {'0%      Default':>20} |")
        lines.append(rule)
    return "\n".join(lines) + "\n"


def lspci_lines(gpus: list[dict[str, Any]], q35: bool) -> str:
    """`lspci -nn` of the guest: the chipset, virtio devices and the GPUs."""
    if q35:
        lines = [
            "00:00.0 Host bridge [0600]: Intel Corporation 82G33/G31/P35/P31 Express DRAM "
            "Controller [8086:29c0]",
            "00:1f.0 ISA bridge [0601]: Intel Corporation 82801IB (ICH9) LPC Interface "
            "Controller [8086:2918] (rev 02)",
        ]
    else:
        lines = [
            "00:00.0 Host bridge [0600]: Intel Corporation 440FX - 82441FX PMC [Natoma] "
            "[8086:1237] (rev 02)"
        ]
    lines.append(
        "00:12.0 Ethernet controller [0200]: Red Hat, Inc. Virtio network device [1af4:1000]"
    )
    for i, gpu in enumerate(gpus):
        device, label = _device(gpu)
        lines.append(
            f"{guest_bus(i, q35)} VGA compatible controller [0300]: {label} "
            f"[10de:{device}] (rev a1)"
        )
    return "\n".join(sorted(lines)) + "\n"


def _device(gpu: dict[str, Any]) -> tuple[str, str]:
    name = str(gpu.get("name", ""))
    given = str(gpu.get("device_id") or gpu.get("device") or "").lower().removeprefix("0x")
    for needle, device, chip, marketing in KNOWN_DEVICES:
        if needle in name and (not given or given == device):
            return device, f"NVIDIA Corporation {chip} [{marketing}]"
    return given or "0000", "NVIDIA Corporation Device"
