"""The Proxmox VE client layer: connect, requests with domain errors, tasks, cluster reads.

Submodules are imported where they are used (requests is not imported by `aihost --help`).
"""
