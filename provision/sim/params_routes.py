"""The parameters of every route the simulator serves, declared by the simulator.

One entry per (method, path template) of the ROUTES lists in provision.sim.routes_*.py
and the login, in the notation of provision.sim.paramspec: the subset of Proxmox's API
schema for those routes (pve-manager PVE/API2/Nodes.pm, Cluster.pm,
Cluster/Mapping/PCI.pm and Dir.pm, pve-storage PVE/API2/Storage/*.pm, qemu-server PVE/API2/Qemu.pm
and Qemu/Agent.pm, pve-access-control PVE/API2/AccessControl.pm). Each route's
`parameters` are what its `PVE::RESTHandler` method declares; a parameter not listed is
refused as pve-common `PVE::JSONSchema::check_object` refuses it. The VM options live in
provision.sim.params_vm, the named formats in provision.sim.params_formats, and the
VM routes (`/nodes/{node}/qemu…`, qemu-server) in provision.sim.params_routes_qemu.
tests/unit/test_sim_params.py keeps this equal to ../shared/pve/apidoc.json (PVE 9.1) and
compatible with PVE 8.4: a route added, or a parameter changed, without updating this
table fails there.
"""

from __future__ import annotations

from provision.sim.params_routes_qemu import QEMU_DECLARED
from provision.sim.params_vm import NODE, VMID
from provision.sim.paramspec import Entry, arr, b, e, i, props, s

# pve-guest-common PVE/Mapping/PCI.pm $map_fmt.
_PCI_MAP_ENTRY: dict[str, Entry] = {
    "description?": s(maxlen=4096),
    "id": s(pat="(?^:^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$)"),
    "iommugroup?": i(),
    "node": NODE,
    "path": s(
        pat="(?:[a-f0-9]{4,}:[a-f0-9]{2}:[a-f0-9]{2}(?:.[a-f0-9])?;)*"
        "[a-f0-9]{4,}:[a-f0-9]{2}:[a-f0-9]{2}(?:.[a-f0-9])?"
    ),
    "subsystem-id?": s(pat="(?^:^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}$)"),
}

# pve-guest-common PVE/Mapping/Dir.pm $map_fmt.
_DIR_MAP_ENTRY: dict[str, Entry] = {
    "node": NODE,
    "path": s(fmt="pve-storage-path-in-property-string"),
}

_DECLARED: dict[tuple[str, str], dict[str, Entry]] = {
    ("GET", "/version"): {},
    ("GET", "/nodes"): {},
    ("GET", "/nodes/{node}/status"): {
        "node": NODE,
    },
    ("GET", "/cluster/resources"): {
        "type?": e("vm storage node sdn"),
    },
    ("GET", "/cluster/nextid"): {
        "vmid?": VMID,
    },
    ("GET", "/cluster/status"): {},
    ("GET", "/nodes/{node}/config"): {
        "node": NODE,
        "property?": e(
            "acme acmedomain0 acmedomain1 acmedomain2 acmedomain3 acmedomain4 acmedomain5 "
            "ballooning-target description startall-onboot-delay wakeonlan"
        ),
    },
    ("PUT", "/nodes/{node}/config"): {
        "acme?": s(
            fmt={
                "account?": s(fmt="pve-configid"),
                "domains?": s(fmt="pve-acme-domain-list"),
            }
        ),
        # pve-manager PVE/NodeConfig.pm: $MAXDOMAINS (the `property` enum: acmedomain0..5)
        "acmedomain[n]?": s(
            fmt={
                "alias?": s(fmt="pve-acme-alias"),
                "domain": s(fmt="pve-acme-domain", dk=1),
                "plugin?": s(fmt="pve-configid"),
            },
            n_range=(0, 5),
        ),
        "ballooning-target?": i(0, 100),
        "delete?": s(fmt="pve-configid-list"),
        "description?": s(maxlen=65536),
        "digest?": s(maxlen=40),
        "node": NODE,
        "startall-onboot-delay?": i(0, 300),
        "wakeonlan?": s(
            fmt={
                "bind-interface?": s(fmt="pve-iface"),
                "broadcast-address?": s(fmt="ipv4"),
                "mac": s(fmt="mac-addr", dk=1),
            }
        ),
    },
    ("GET", "/nodes/{node}/hardware/pci"): {
        "node": NODE,
        "pci-class-blacklist?": s(fmt="string-list"),
        "verbose?": b(),
    },
    ("GET", "/cluster/mapping/pci"): {
        "check-node?": NODE,
    },
    ("POST", "/cluster/mapping/pci"): {
        "description?": s(maxlen=4096),
        "id": s(fmt="pve-configid"),
        "live-migration-capable?": b(),
        "map": arr(s(fmt=_PCI_MAP_ENTRY)),
        "mdev?": b(),
    },
    ("GET", "/cluster/mapping/pci/{id}"): {
        "id": s(fmt="pve-configid"),
    },
    ("PUT", "/cluster/mapping/pci/{id}"): {
        "delete?": s(fmt="pve-configid-list", maxlen=4096),
        "description?": s(maxlen=4096),
        "digest?": s(maxlen=64),
        "id": s(fmt="pve-configid"),
        "live-migration-capable?": b(),
        "map?": arr(s(fmt=_PCI_MAP_ENTRY)),
        "mdev?": b(),
    },
    ("DELETE", "/cluster/mapping/pci/{id}"): {
        "id": s(fmt="pve-configid"),
    },
    # pve-manager PVE/API2/Cluster/Mapping/Dir.pm (create/update: Dir.pm createSchema(1)
    # and updateSchema()).
    ("GET", "/cluster/mapping/dir"): {
        "check-node?": NODE,
    },
    ("POST", "/cluster/mapping/dir"): {
        "description?": s(maxlen=4096),
        "id": s(fmt="pve-configid"),
        "map": arr(s(fmt=_DIR_MAP_ENTRY)),
    },
    ("GET", "/cluster/mapping/dir/{id}"): {
        "id": s(fmt="pve-configid"),
    },
    ("PUT", "/cluster/mapping/dir/{id}"): {
        "delete?": s(fmt="pve-configid-list", maxlen=4096),
        "description?": s(maxlen=4096),
        "digest?": s(maxlen=64),
        "id": s(fmt="pve-configid"),
        "map?": arr(s(fmt=_DIR_MAP_ENTRY)),
    },
    ("DELETE", "/cluster/mapping/dir/{id}"): {
        "id": s(fmt="pve-configid"),
    },
    ("GET", "/access/permissions"): {
        "path?": s(),
        "userid?": s(
            pat="(?^:^(?^:[^\\s:/]+)\\@(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+)"
            "(?:!(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+))?$)"
        ),
    },
    ("GET", "/nodes/{node}/storage"): {
        "content?": s(fmt="pve-storage-content-list"),
        "enabled?": b(),
        "format?": b(),
        "node": NODE,
        "storage?": s(fmt="pve-storage-id"),
        "target?": NODE,
    },
    ("GET", "/nodes/{node}/storage/{storage}/status"): {
        "node": NODE,
        "storage": s(fmt="pve-storage-id"),
    },
    ("GET", "/nodes/{node}/storage/{storage}/content"): {
        "content?": s(fmt="pve-storage-content"),
        "node": NODE,
        "storage": s(fmt="pve-storage-id"),
        "vmid?": VMID,
    },
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"): {
        "delay?": i(1, 30),
        "node": NODE,
        "storage?": s(fmt="pve-storage-id"),
        "volume": s(),
    },
    ("POST", "/nodes/{node}/storage/{storage}/upload"): {
        "checksum?": s(req="checksum-algorithm"),
        "checksum-algorithm?": e("md5 sha1 sha224 sha256 sha384 sha512", req="checksum"),
        "content": e("iso vztmpl import", fmt="pve-storage-content"),
        "filename": s(maxlen=255),
        "node": NODE,
        "storage": s(fmt="pve-storage-id"),
        "tmpfilename?": s(pat="/var/tmp/pveupload-[0-9a-f]+"),
    },
    ("GET", "/nodes/{node}/tasks/{upid}/status"): {
        "node": NODE,
        "upid": s(),
    },
    ("GET", "/nodes/{node}/tasks/{upid}/log"): {
        "download?": b(),
        "limit?": i(0),
        "node": NODE,
        "start?": i(0),
        "upid": s(),
    },
    ("POST", "/access/ticket"): {
        "new-format?": b(),
        "otp?": s(),
        "password": s(),
        "path?": s(maxlen=64, req="privs"),
        "privs?": s(fmt="pve-priv-list", maxlen=64, req="path"),
        "realm?": s(fmt="pve-realm", maxlen=32),
        "tfa-challenge?": s(),
        "username": s(maxlen=64),
    },
    # pve-storage PVE/API2/Storage/Config.pm `read` and pve-manager PVE/API2/Tasks.pm
    # `node_tasks` (routes the route audit added).
    ("GET", "/storage/{storage}"): {"storage": s(fmt="pve-storage-id")},
    ("GET", "/nodes/{node}/tasks"): {
        "errors?": b(),
        "limit?": i(0),
        "node": NODE,
        "since?": i(),
        "source?": e("archive active all"),
        "start?": i(0),
        "statusfilter?": s(fmt="pve-task-status-type-list"),
        "typefilter?": s(),
        "until?": i(),
        "userfilter?": s(),
        "vmid?": VMID,
    },
}

# What the routes declare, "name?" keys expanded: {(METHOD, template): {name: schema}}.
DECLARED: dict[tuple[str, str], dict[str, Entry]] = {
    route: props(entries) for route, entries in {**_DECLARED, **QEMU_DECLARED}.items()
}
