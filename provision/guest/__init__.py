"""Talking to the guest through the QEMU guest agent, and proving it works."""
