"""The aiohttp application: WebSocket endpoints, REST, health, metrics, auth, limits."""

from cryptowire.server.app import create_app

__all__ = ["create_app"]
