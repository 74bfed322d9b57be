"""The simulated Proxmox VE: an HTTPS API server (provision.sim.server.SimServer) with
Proxmox's semantics, an SFTP endpoint for snippets, and a MODEL of the guests.

It refuses what a real Proxmox refuses, with Proxmox's own status and message; the guest
behind the agent endpoints is a model (provision.sim.guest), not a running VM.
"""
