"""SSH/SFTP to a Proxmox node: snippet upload and host checks, with host keys always checked.

`provision.ssh.transport` holds the public interface (SshTarget, SshSession, CommandResult);
paramiko is imported only when a session opens, so importing this package stays cheap.
"""
