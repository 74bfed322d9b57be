"""aihost's benchmarks against Ansible's proxmox_kvm and a proxmoxer script (issue #8).

Run `python -m bench` (see `python -m bench --help`); results go to bench/RESULTS.md and
bench/results.json.
"""
