#!/bin/sh
# Build (or reuse) a Debian 12 guest image for the real guest lane: debootstrap from
# Debian's archive with the packages an aihost template would have baked in, then an ext4
# disk image plus the kernel and initrd QEMU boots directly (no bootloader needed).
#
#   build_image.sh CACHE_DIR   -> prints the image directory (CACHE_DIR/<key>)
#
# The key is a hash of the package list, suite, mirror and this script, so a change of
# any of them builds a new image; an existing complete image is reused as is.
# Needs root, debootstrap and mkfs.ext4 (e2fsprogs). Facts: /work/shared/guest/README.md.
set -eu
CACHE=${1:?usage: build_image.sh CACHE_DIR}
SUITE=bookworm
MIRROR=${AIHOST_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the guest README lists (python3-cffi-backend or python3-cryptography never
# configures), locales (else cloud-init's locale module fails: cloud images have it),
# plus what aihost's user-data installs at first boot (jq, zstd, dkms and the kernel
# headers meta package for the driver), so a first boot takes minutes.
PACKAGES="linux-image-amd64,linux-headers-amd64,cloud-init,qemu-guest-agent,systemd-sysv,\
ifupdown,openssh-server,python3-cffi-backend,sudo,curl,ca-certificates,isc-dhcp-client,\
initramfs-tools,jq,zstd,dkms,pciutils,udev,locales"
SIZE=8G

key=$( { echo "$SUITE $MIRROR $PACKAGES $SIZE"; cat "$0"; } | sha256sum | cut -c1-16)
out="$CACHE/$key"
if [ -f "$out/complete" ]; then
    echo "$out"
    exit 0
fi
mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
debootstrap --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    echo "build_image: debootstrap failed (log above)" >&2
    exit 1
}
echo "/dev/vda / ext4 defaults 0 1" >"$root/etc/fstab"
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo "debian" >"$root/etc/hostname"
# The lane runs without NVIDIA's or the runtimes' servers on every machine, reachable,
# refused or silently dropped: a phase that needs them fails at once, for its real reason
# (connection refused) and says so. Where a firewall drops packets instead, a download
# would wait out its connect timeout and retries. (CI's lane once ran out of its 30
# minutes after test_real_guest's first test, the rest of its output lost; a download
# waiting on dropped packets is the likely cause, not a proven one.)
for name in developer.download.nvidia.com ollama.com registry.ollama.ai github.com \
    objects.githubusercontent.com huggingface.co cdn-lfs.huggingface.co; do
    echo "127.0.0.1 $name" >>"$root/etc/hosts"
done
# As Debian's cloud images: C.UTF-8 (cloud-init's locale module then has nothing to
# generate; with LANG unset it asks for en_US.UTF-8, which Debian's locale-gen ignores).
echo "LANG=C.UTF-8" >"$root/etc/default/locale"
# Debian's cloud image leaves networking to cloud-init (fallback: DHCP on the first NIC).
printf 'auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n' \
    >"$root/etc/network/interfaces"
chroot "$root" apt-get clean
mkdir -p "$work/image"
cp "$root"/boot/vmlinuz-* "$work/image/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/image/initrd"
mkfs.ext4 -q -L root -d "$root" "$work/image/disk.img" "$SIZE"
echo "$PACKAGES" >"$work/image/packages"
touch "$work/image/complete"
rm -rf "$out"
mv "$work/image" "$out"
echo "$out"
