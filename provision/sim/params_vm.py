"""The VM configuration options the simulator accepts, declared by the simulator: the
subset of Proxmox's schema for the VM routes it serves (create, `PUT`/`POST .../config`),
in the notation of provision.sim.paramspec (a table: not reformatted). It follows qemu-server 9.x:
`$confdesc` and `$confdesc_cloudinit` in src/PVE/QemuServer.pm, the drive formats of
src/PVE/QemuServer/Drive.pm (`%drivedesc_base` plus each bus's extra keys), `$net_fmt`
in src/PVE/QemuServer/Network.pm, and the create/update extras in src/PVE/API2/Qemu.pm
(`create_vm`, `update_vm_api`). tests/unit/test_sim_params.py keeps it equal to
../shared/pve/apidoc.json (PVE 9.1) and compatible with PVE 8.4."""

from __future__ import annotations

from provision.sim.paramspec import Entry, a, b, e, i, n, s

# fmt: off
NODE = s(fmt="pve-node")
VMID = i(100, 999999999, fmt="pve-vmid")

_NIC_MODELS = (
    "e1000 e1000-82540em e1000-82544gc e1000-82545em e1000e i82551 i82557b i82559er "
    "ne2k_isa ne2k_pci pcnet rtl8139 virtio vmxnet3"
)
_UPDATE_ONLY = ("delete?", "revert?", "digest?", "skiplock?")

# QemuServer/Machine.pm $machine_fmt (also the `machine` parameter of vm_start).
MACHINE: dict[str, Entry] = {
    "aw-bits?": n(32, 64),
    "enable-s3?": b(),
    "enable-s4?": b(),
    "type?": s(
        pat="(pc|pc(-i440fx)?-\\d+(\\.\\d+)+(\\+pve\\d+)?(\\.pxe)?|q35"
        "|pc-q35-\\d+(\\.\\d+)+(\\+pve\\d+)?(\\.pxe)?|virt(?:-\\d+(\\.\\d+)+)?(\\+pve\\d+)?)",
        maxlen=40,
        dk=1,
    ),
    "viommu?": e("intel virtio"),
}

# Drive.pm %drivedesc_base (with %iothrottle_fmt and import-from), shared by every bus.
DRIVE_BASE: dict[str, Entry] = {
    "aio?": e("native threads io_uring"),
    "backup?": b(),
    "bps?": i(),
    "bps_max_length?": i(1),
    "bps_rd?": i(),
    "bps_rd_length": a("bps_rd_max_length"),
    "bps_rd_max_length?": i(1),
    "bps_wr?": i(),
    "bps_wr_length": a("bps_wr_max_length"),
    "bps_wr_max_length?": i(1),
    "cache?": e("none writethrough writeback unsafe directsync"),
    "detect_zeroes?": b(),
    "discard?": e("ignore on"),
    "file": s(fmt="pve-volume-id-or-qm-path", dk=1),
    "format?": e("raw qcow qed qcow2 vmdk cloop"),
    "import-from?": s(fmt="pve-volume-id-or-absolute-path"),
    "iops?": i(),
    "iops_max?": i(),
    "iops_max_length?": i(1),
    "iops_rd?": i(),
    "iops_rd_length": a("iops_rd_max_length"),
    "iops_rd_max?": i(),
    "iops_rd_max_length?": i(1),
    "iops_wr?": i(),
    "iops_wr_length": a("iops_wr_max_length"),
    "iops_wr_max?": i(),
    "iops_wr_max_length?": i(1),
    "mbps?": n(),
    "mbps_max?": n(),
    "mbps_rd?": n(),
    "mbps_rd_max?": n(),
    "mbps_wr?": n(),
    "mbps_wr_max?": n(),
    "media?": e("cdrom disk"),
    "replicate?": b(),
    "rerror?": e("ignore report stop"),
    "serial?": s(fmt="urlencoded", maxlen=60),
    "shared?": b(),
    "size?": s(fmt="disk-size"),
    "snapshot?": b(),
    "volume": a("file"),
    "werror?": e("enospc ignore report stop"),
}
IDE: dict[str, Entry] = {
    **DRIVE_BASE,
    "model?": s(fmt="urlencoded", maxlen=120),
    "ssd?": b(),
    "wwn?": s(pat="(?^:^(0x)[0-9a-fA-F]{16})"),
}
SATA: dict[str, Entry] = {
    **DRIVE_BASE,
    "ssd?": b(),
    "wwn?": s(pat="(?^:^(0x)[0-9a-fA-F]{16})"),
}
SCSI: dict[str, Entry] = {
    **DRIVE_BASE,
    "iothread?": b(),
    "product?": s(pat="[A-Za-z0-9\\-_\\s]{,16}"),
    "queues?": i(2),
    "ro?": b(),
    "scsiblock?": b(),
    "ssd?": b(),
    "vendor?": s(pat="[A-Za-z0-9\\-_\\s]{,8}"),
    "wwn?": s(pat="(?^:^(0x)[0-9a-fA-F]{16})"),
}
VIRTIO: dict[str, Entry] = {
    **DRIVE_BASE,
    "iothread?": b(),
    "ro?": b(),
}
EFIDISK: dict[str, Entry] = {
    **{k: DRIVE_BASE[k] for k in ("file", "format?", "import-from?", "size?", "volume")},
    "efitype?": e("2m 4m"),
    "ms-cert?": e("2011 2023 2023w 2023k"),
    "pre-enrolled-keys?": b(),
}
TPMSTATE: dict[str, Entry] = {
    **{k: DRIVE_BASE[k] for k in ("file", "import-from?", "size?", "volume")},
    "format?": e("raw qcow2 vmdk"),
    "version?": e("v1.2 v2.0"),
}

# QemuServer.pm $confdesc (+ cloud-init, + update_vm_api's delete/revert/digest/...).
VM_OPTIONS: dict[str, Entry] = {
    "acpi?": b(),
    "affinity?": s(fmt="pve-cpuset"),
    "agent?": s(fmt={
        "enabled": b(dk=1),
        "freeze-fs?": b(),
        "freeze-fs-on-backup": a("freeze-fs"),
        "fstrim_cloned_disks?": b(),
        "guest-fsfreeze": a("freeze-fs"),
        "type?": e("virtio isa"),
    }),
    "allow-ksm?": b(),
    "amd-sev?": s(fmt="pve-qemu-sev-fmt"),
    "arch?": e("x86_64 aarch64"),
    "args?": s(),
    "audio0?": s(fmt={
        "device": e("ich9-intel-hda intel-hda AC97"),
        "driver?": e("spice none"),
    }),
    "autostart?": b(),
    "balloon?": i(0),
    "bios?": e("seabios ovmf"),
    "boot?": s(fmt="pve-qm-boot"),
    "bootdisk?": s(fmt="pve-qm-bootdisk", pat="(ide|sata|scsi|virtio)\\d+"),
    "cdrom?": s(fmt="pve-qm-ide"),
    "cicustom?": s(fmt="pve-qm-cicustom"),
    "cipassword?": s(),
    "citype?": e("configdrive2 nocloud opennebula"),
    "ciupgrade?": b(),
    "ciuser?": s(),
    "cores?": i(1),
    "cpu?": s(fmt="pve-vm-cpu-conf"),
    "cpulimit?": n(0, 128),
    "cpuunits?": i(1, 262144),
    "delete?": s(fmt="pve-configid-list"),
    "description?": s(maxlen=8192),
    "digest?": s(maxlen=40),
    "force?": b(req="delete"),
    "freeze?": b(),
    "hookscript?": s(fmt="pve-volume-id"),
    "hostpci[n]?": s(fmt="pve-qm-hostpci"),
    "hotplug?": s(fmt="pve-hotplug-features"),
    "hugepages?": e("any 2 1024"),
    "intel-tdx?": s(fmt="pve-qemu-tdx-fmt"),
    "ipconfig[n]?": s(fmt="pve-qm-ipconfig"),
    "ivshmem?": s(fmt={
        "name?": s(pat="[a-zA-Z0-9\\-]+"),
        "size": i(1),
    }),
    "keephugepages?": b(),
    "keyboard?": e(
        "de de-ch da en-gb en-us es fi fr fr-be fr-ca fr-ch hu is it ja lt mk nl no pl pt pt-br "
        "sv sl tr"
    ),
    "kvm?": b(),
    "localtime?": b(),
    "lock?": e(
        "backup clone create migrate rollback snapshot snapshot-delete suspending suspended"
    ),
    "machine?": s(fmt=MACHINE),
    "memory?": s(fmt={
        "current": i(16, dk=1),
    }),
    "migrate_downtime?": n(0),
    "migrate_speed?": i(0),
    "name?": s(fmt="dns-name"),
    "nameserver?": s(fmt="address-list"),
    "net[n]?": s(fmt={
        "bridge?": s(fmt="pve-bridge-id"),
        **{m: a("macaddr", key_alias="model") for m in _NIC_MODELS.split()},
        "firewall?": b(),
        "link_down?": b(),
        "macaddr?": s(fmt="mac-addr"),
        "model": e(_NIC_MODELS, dk=1),
        "mtu?": i(1, 65520),
        "queues?": i(0, 64),
        "rate?": n(0),
        "tag?": i(1, 4094),
        "trunks?": s(pat="(?^:\\d+(?:-\\d+)?(?:;\\d+(?:-\\d+)?)*)"),
    }),
    "node": s(fmt="pve-node"),
    "numa?": b(),
    "numa[n]?": s(fmt={
        "cpus": s(pat="(?^:\\d+(?:-\\d+)?(?:;\\d+(?:-\\d+)?)*)"),
        "hostnodes?": s(pat="(?^:\\d+(?:-\\d+)?(?:;\\d+(?:-\\d+)?)*)"),
        "memory?": n(),
        "policy?": e("preferred bind interleave"),
    }),
    "onboot?": b(),
    "ostype?": e("other wxp w2k w2k3 w2k8 wvista win7 win8 win10 win11 l24 l26 solaris"),
    "parallel[n]?": s(pat="/dev/parport\\d+|/dev/usb/lp\\d+"),
    "protection?": b(),
    "reboot?": b(),
    "revert?": s(fmt="pve-configid-list"),
    "rng0?": s(fmt="pve-qm-rng"),
    "scsihw?": e("lsi lsi53c810 virtio-scsi-pci virtio-scsi-single megasas pvscsi"),
    "searchdomain?": s(),
    "serial[n]?": s(pat="(/dev/.+|socket)"),
    "shares?": i(0, 50000),
    "skiplock?": b(),
    "smbios1?": s(fmt="pve-qm-smbios1", maxlen=512),
    "smp?": i(1),
    "sockets?": i(1),
    "spice_enhancements?": s(fmt={
        "foldersharing?": b(),
        "videostreaming?": e("off all filter"),
    }),
    "sshkeys?": s(fmt="urlencoded"),
    "startdate?": s(pat="(now|\\d{4}-\\d{1,2}-\\d{1,2}(T\\d{1,2}:\\d{1,2}:\\d{1,2})?)"),
    "startup?": s(fmt="pve-startup-order"),
    "tablet?": b(),
    "tags?": s(fmt="pve-tag-list"),
    "tdf?": b(),
    "template?": b(),
    "unused[n]?": s(fmt={
        "file": s(fmt="pve-volume-id", dk=1),
        "volume": a("file"),
    }),
    "usb[n]?": s(fmt={
        "host?": s(
            pat="(?^:(?:(?:(?^:(0x)?([0-9A-Fa-f]{4}):(0x)?([0-9A-Fa-f]{4})))"
            "|(?:(?^:(\\d+)\\-(\\d+(\\.\\d+)*)))|[Ss][Pp][Ii][Cc][Ee]))",
            dk=1,
        ),
        "mapping?": s(fmt="pve-configid"),
        "usb3?": b(),
    }),
    "vcpus?": i(1),
    "vga?": s(fmt={
        "clipboard?": e("vnc"),
        "memory?": i(4, 512),
        "type?": e(
            "cirrus qxl qxl2 qxl3 qxl4 none serial0 serial1 serial2 serial3 std virtio "
            "virtio-gl vmware",
            dk=1,
        ),
    }),
    "virtiofs[n]?": s(fmt={
        "cache?": e("auto always metadata never"),
        "direct-io?": b(),
        "dirid": s(fmt="pve-configid", dk=1),
        "expose-acl?": b(),
        "expose-xattr?": b(),
    }),
    "vmgenid?": s(pat="(?:[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}|[01])"),
    "vmid": i(100, 999999999, fmt="pve-vmid"),
    "vmstatestorage?": s(fmt="pve-storage-id"),
    "watchdog?": s(fmt="pve-qm-watchdog"),
    "ide[n]?": s(fmt=IDE),
    "sata[n]?": s(fmt=SATA),
    "scsi[n]?": s(fmt=SCSI),
    "virtio[n]?": s(fmt=VIRTIO),
    "efidisk0?": s(fmt=EFIDISK),
    "tpmstate0?": s(fmt=TPMSTATE),
}

# API2/Qemu.pm create_vm: the options plus restore/create-only keys, without update's.
CREATE_OPTIONS: dict[str, Entry] = {
    **{k: v for k, v in VM_OPTIONS.items() if k not in _UPDATE_ONLY},
    "archive?": s(maxlen=255),
    "bwlimit?": i(0),
    "force?": b(req="archive"),
    "ha-managed?": b(),
    "import-working-storage?": s(fmt="pve-storage-id"),
    "live-restore?": b(),
    "pool?": s(fmt="pve-poolid"),
    "start?": b(),
    "storage?": s(fmt="pve-storage-id"),
    "unique?": b(req="archive"),
}

# API2/Qemu.pm update_vm (POST, async) adds background_delay and import-working-storage.
POST_CONFIG_OPTIONS: dict[str, Entry] = {
    **VM_OPTIONS,
    "background_delay?": i(1, 30),
    "import-working-storage?": s(fmt="pve-storage-id"),
}
# fmt: on
