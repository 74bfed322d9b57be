"""GPUs: one holder each, a lease kept in Proxmox, safe swaps, passthrough pre-flight."""
