"""Cloud-init user-data for aihost VMs: Jinja2 templates rendered into checked YAML."""

from provision.cloudinit.render import RenderedUserData, render_meta_data, render_user_data

__all__ = ["RenderedUserData", "render_meta_data", "render_user_data"]
