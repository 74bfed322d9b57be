"""aihost: Proxmox VE GPU passthrough VMs with a private LLM server inside."""

__version__ = "0.1.0"
