"""Reading NoCloud cidata ISOs made by genisoimage (as Proxmox does) and by pycdlib."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest

from provision.sim.cidata import linux_iso9660_name, read_cidata_iso

FILES = {
    "user-data": "#cloud-config\npackages: [qemu-guest-agent]\n",
    "meta-data": "instance-id: aihost-box-g1\nlocal-hostname: box\n",
    "network-config": "version: 1\nconfig: []\n",
    "vendor-data": "",
}
GENISOIMAGE = shutil.which("genisoimage")
needs_genisoimage = pytest.mark.skipif(
    GENISOIMAGE is None, reason="genisoimage is not installed (apt-get install genisoimage)"
)


def genisoimage(
    tmp_path: Path, *flags: str, label: str = "cidata", names: tuple[str, ...] = tuple(FILES)
) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in names:
        (src / name).write_text(FILES[name])
    out = tmp_path / "seed.iso"
    subprocess.run(
        [str(GENISOIMAGE), "-quiet", "-output", str(out), "-volid", label, *flags, *names],
        cwd=src,
        check=True,
        timeout=30,
    )
    return out


def pycdlib_iso(tmp_path: Path, label: str, *, joliet: bool, rock_ridge: bool) -> Path:
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3,
        joliet=3 if joliet else None,
        rock_ridge="1.09" if rock_ridge else None,
        vol_ident=label,
    )
    for name in ("user-data", "meta-data"):
        data = FILES[name].encode()
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            "/" + name.replace("-", "_").upper() + ".;1",
            rr_name=name if rock_ridge else None,
            joliet_path="/" + name if joliet else None,
        )
    out = tmp_path / "pycdlib.iso"
    iso.write(str(out))
    iso.close()
    return out


@needs_genisoimage
@pytest.mark.parametrize(
    "flags",
    [("-joliet", "-rock"), ("-iso-level", "3", "-J", "-R"), ("-joliet",), ("-rock",)],
    ids=["joliet+rock", "proxmox-flags", "joliet-only", "rock-only"],
)
def test_genisoimage_iso(tmp_path: Path, flags: tuple[str, ...]) -> None:
    assert read_cidata_iso(genisoimage(tmp_path, *flags)) == FILES


@needs_genisoimage
def test_upper_case_label_is_accepted(tmp_path: Path) -> None:
    iso = genisoimage(tmp_path, "-J", "-R", label="CIDATA", names=("user-data", "meta-data"))
    assert set(read_cidata_iso(iso)) == {"user-data", "meta-data"}


@needs_genisoimage
def test_plain_iso9660_names_are_not_nocloud_names(tmp_path: Path) -> None:
    # Without Rock Ridge or Joliet, Linux shows USER_DAT.;1 as "user_dat": cloud-init
    # finds no user-data on such a disk.
    assert read_cidata_iso(genisoimage(tmp_path)) == {}


@needs_genisoimage
def test_wrong_label_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="volume label 'config-2', not 'cidata'"):
        read_cidata_iso(genisoimage(tmp_path, "-J", "-R", label="config-2"))


@pytest.mark.parametrize(("joliet", "rock_ridge"), [(True, True), (True, False), (False, True)])
def test_pycdlib_iso(tmp_path: Path, joliet: bool, rock_ridge: bool) -> None:
    iso = pycdlib_iso(tmp_path, "cidata", joliet=joliet, rock_ridge=rock_ridge)
    assert read_cidata_iso(iso) == {k: FILES[k] for k in ("user-data", "meta-data")}


def test_aihost_builder_round_trip(tmp_path: Path) -> None:
    from provision.delivery.iso import build_cidata_iso

    files = {k: FILES[k].encode() for k in ("user-data", "meta-data", "network-config")}
    path = tmp_path / "aihost.iso"
    path.write_bytes(build_cidata_iso(files))
    assert read_cidata_iso(path) == {k: v.decode() for k, v in files.items()}


def test_not_an_iso(tmp_path: Path) -> None:
    path = tmp_path / "x.iso"
    path.write_bytes(b"#cloud-config\n" * 4000)
    with pytest.raises(ValueError, match="not an ISO 9660 image"):
        read_cidata_iso(path)
    with pytest.raises(ValueError, match="label 'other'"):
        read_cidata_iso(pycdlib_iso(tmp_path, "other", joliet=True, rock_ridge=True))


def test_linux_names() -> None:
    assert linux_iso9660_name("USER_DAT.;1") == "user_dat"
    assert linux_iso9660_name("USER-DATA;1") == "user-data"
    assert linux_iso9660_name("META_DATA.") == "meta_data."
