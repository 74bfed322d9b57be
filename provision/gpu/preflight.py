"""`aihost host check`: can passthrough work on this node? Each failure with its fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from provision.delivery.snippets import ssh_target
from provision.errors import ApiError
from provision.gpu.context import GpuContext
from provision.gpu.mapping import map_entry, same_model
from provision.pve.hardware import PciDevice, functions_of, read_pci
from provision.pve.mapping import Mapping
from provision.pve.pci import map_entry_fields, map_entry_slot
from provision.pve.session import Session
from provision.ssh.transport import SshSession


@dataclass
class Finding:
    """One check: passed or not, what was seen, and how to fix it."""

    check: str
    ok: bool
    detail: str
    fix: str | None = None


@dataclass
class HostReport:
    """All findings for one inventory host."""

    host: str
    node: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return all(f.ok for f in self.findings)

    def to_json(self) -> dict[str, Any]:
        """Plain data for --output json."""
        return {
            "host": self.host,
            "node": self.node,
            "ok": self.ok,
            "findings": [asdict(f) for f in self.findings],
        }


def check_host(session: Session, host_name: str) -> HostReport:
    """Hardware, IOMMU and mapping checks through the API; kernel checks over SSH if set."""
    inv = session.inv
    node = inv.node_of(host_name)
    report = HostReport(host_name, node)
    client = session.client(host_name)
    devices = read_pci(client, node)
    for gpu_name, gpu in sorted(inv.gpus.items()):
        if gpu.host != host_name:
            continue
        ctx = GpuContext(session, gpu_name)
        report.findings.extend(_gpu_findings(ctx, devices))
    report.findings.extend(_ssh_findings(session, host_name, devices))
    return report


def _gpu_findings(ctx: GpuContext, devices: list[PciDevice]) -> list[Finding]:
    name = ctx.name
    slot, mapping_entry = _slot_of(ctx)
    if slot is None:
        # Not a host problem: `vm up` creates the mapping from the node's hardware listing.
        return [
            Finding(
                f"{name}: mapping",
                True,
                f"mapping '{ctx.gpu.mapping}' has no entry for node {ctx.node} yet: "
                f"`aihost gpu map {name}` (or `vm up` of a VM that uses it) creates it "
                "from the hardware listing",
                f"aihost gpu map {name}",
            )
        ]
    funcs = functions_of(devices, slot)
    gpu_funcs = [d for d in funcs if d.is_gpu]
    if not gpu_funcs:
        return [
            Finding(
                f"{name}: present",
                False,
                f"no GPU at {slot} on {ctx.node}",
                "check the address with `lspci -D | grep -i nvidia` on the node, then "
                f"fix pci: or re-run `aihost gpu map {name}`",
            )
        ]
    card = gpu_funcs[0]
    found = [Finding(f"{name}: present", True, f"{card.slot}: {card.name} ({card.vendor_device})")]
    found += _card_findings(ctx, card)
    found += _iommu_findings(name, card, devices)
    if card.iommugroup < 0:
        return found
    if mapping_entry is not None:
        want = map_entry(ctx, card)
        same = map_entry_fields(mapping_entry) == map_entry_fields(want)
        found.append(
            Finding(
                f"{name}: mapping",
                same,
                "matches the hardware"
                if same
                else f"mapping says '{mapping_entry}', hardware is '{want}'",
                None if same else f"aihost gpu map {name}",
            )
        )
    return found


def _card_findings(ctx: GpuContext, card: PciDevice) -> list[Finding]:
    """The card is the inventory's model and an NVIDIA one."""
    name, found = ctx.name, []
    if ctx.gpu.model and not same_model(ctx.gpu.model, card.name):
        found.append(
            Finding(
                f"{name}: model",
                False,
                f"{card.slot} is '{card.name}', the inventory says '{ctx.gpu.model}'",
                f"aihost gpu map {name} --pci ADDRESS (of the {ctx.gpu.model})",
            )
        )
    if card.vendor.lower() != "0x10de":
        found.append(
            Finding(
                f"{name}: vendor",
                False,
                f"vendor {card.vendor} is not NVIDIA",
                "point the inventory at the NVIDIA card",
            )
        )
    return found


def _iommu_findings(name: str, card: PciDevice, devices: list[PciDevice]) -> list[Finding]:
    """IOMMU on, and the card's group holding only the card's own functions."""
    if card.iommugroup < 0:
        return [
            Finding(
                f"{name}: IOMMU",
                False,
                "IOMMU is off (IOMMU group -1)",
                "enable VT-d/AMD-Vi in the firmware, add intel_iommu=on iommu=pt to "
                "the kernel command line (/etc/kernel/cmdline or GRUB), "
                "update-initramfs -u, reboot",
            )
        ]
    found = [Finding(f"{name}: IOMMU", True, f"IOMMU group {card.iommugroup}")]
    group = [d for d in devices if d.iommugroup == card.iommugroup]
    strangers = [d for d in group if d.slot != card.slot]
    if strangers:
        found.append(
            Finding(
                f"{name}: IOMMU group",
                False,
                "group also holds " + ", ".join(f"{d.id} ({d.name})" for d in strangers),
                "move the card to a slot with its own group (CPU-attached), or accept the risk "
                "with pcie_acs_override=downstream; everything in a group passes through together",
            )
        )
    else:
        found.append(
            Finding(f"{name}: IOMMU group", True, f"only the card's {len(group)} function(s)")
        )
    return found


def _slot_of(ctx: GpuContext) -> tuple[str | None, str | None]:
    """The card's slot on ctx's node, and the mapping's entry for that node (if mapped)."""
    if ctx.ref.address is not None:
        return ctx.ref.address.slot, None
    try:
        mapping = Mapping(ctx.client, str(ctx.gpu.mapping)).read()
    except ApiError:
        return None, None
    for entry in mapping.get("map") or []:
        if map_entry_fields(str(entry)).get("node") == ctx.node:
            return map_entry_slot(str(entry)), str(entry)
    return None, None


def _ssh_findings(session: Session, host_name: str, devices: list[PciDevice]) -> list[Finding]:
    host = session.inv.hosts[host_name]
    if host.api != "sim" and host.ssh is None:
        return [Finding("kernel (ssh)", True, "skipped: no ssh settings for this host")]

    findings = []
    gpus = [d for d in devices if d.vendor.lower() == "0x10de"]
    with SshSession(ssh_target(session.inv, host_name)) as ssh:
        cmdline = ssh.run("cat /proc/cmdline").stdout
        iommu = any(flag in cmdline for flag in ("intel_iommu=on", "amd_iommu=on", "iommu=pt"))
        findings.append(
            Finding(
                "kernel command line",
                iommu,
                cmdline.strip() or "(empty)",
                None if iommu else "add intel_iommu=on iommu=pt and reboot",
            )
        )
        modules = ssh.run("lsmod").stdout
        loaded = [m for m in ("nouveau", "nvidia") if f"\n{m} " in f"\n{modules}"]
        findings.append(
            Finding(
                "host GPU drivers",
                not loaded,
                f"loaded on the host: {', '.join(loaded)}"
                if loaded
                else "nouveau/nvidia not loaded",
                None
                if not loaded
                else "blacklist nouveau and nvidia in /etc/modprobe.d, update-initramfs -u, reboot",
            )
        )
        for dev in gpus:
            driver = ssh.run(f"readlink /sys/bus/pci/devices/{dev.id}/driver").stdout.strip()
            bound = driver.rsplit("/", 1)[-1] if driver else "none"
            findings.append(
                Finding(
                    f"{dev.id} driver",
                    bound == "vfio-pci",
                    f"bound to {bound}",
                    None
                    if bound == "vfio-pci"
                    else f"echo 'options vfio-pci ids={dev.vendor_device}' "
                    "> /etc/modprobe.d/vfio.conf; update-initramfs -u; reboot",
                )
            )
    return findings
