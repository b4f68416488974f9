"""Notifications out of the hub: Telegram alerts for tracked tokens (``telegram``)."""
