"""The ``[server]`` and ``[auth]`` sections: the listener, its limits, and who may connect."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from cryptowire.settings.base import Section


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for all).")
    port: int = Field(8000, description="TCP port for HTTP and every WebSocket path.")
    tls_cert: Path | None = Field(None, description="PEM certificate; with tls_key serves wss://.")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser Origins allowed to open sockets besides the hub's own "
        '(same-origin); ["*"] allows any. Requests without an Origin (not browsers) pass.',
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names accepted on socket upgrades; when bound to a loopback address "
        'only loopback names are accepted unless listed here (["*"]: any). DNS rebinding.',
    )
    max_connections: int = Field(10_000, description="Total WebSocket connections (4003 over).")
    http_headroom: int = Field(
        256, ge=0,
        description="Connections of the port (sessions + HTTP, half-sent requests included) "
        "may reach max_connections + this; a new one over it (or near the open-file limit) "
        "gets HTTP 503.",
    )
    unauthenticated_share: float = Field(
        0.9, gt=0, le=1,
        description="Share of max_connections that sessions without an API key may hold; "
        "the rest stays for keyed sessions (4003 over).",
    )
    auth_timeout_s: float = Field(
        10.0, gt=0,
        description="A socket that must authenticate (/swaps; /ws with anonymous_read off) "
        "and has not within this many seconds is closed with 4001.",
    )
    header_timeout_s: float = Field(
        10.0, gt=0,
        description="Seconds a connection may take to send a complete HTTP request head, or "
        "stay idle between requests, before it is closed.",
    )
    max_connections_per_key: int = Field(
        500, description="Connections per API key (anonymous clients count per remote IP)."
    )
    max_subscriptions: int = Field(100, description="Subscriptions per session.")
    max_inbound_rate: int = Field(100, description="Client messages per second per session.")
    max_frame_bytes: int = Field(65_536, description="Largest client frame accepted (1009 over).")
    outbound_buffer_bytes: int = Field(
        4 * 1024 * 1024,
        description="Bytes queued to one session before it is closed as a slow consumer (4008).",
    )
    max_outbound_bytes: int = Field(
        256 * 1024 * 1024,
        description="Bytes queued to all sessions of the node together; over it the sessions "
        "with the largest buffers are closed first (4008).",
    )
    ping_interval_s: float = Field(
        20.0, gt=0,
        description="Server WebSocket ping period; a session that sends nothing (no pong) "
                    "within half of it after a ping is closed with 4011.",
    )
    anonymous_read: bool = Field(
        True, description="Allow clients without a key to read public channels."
    )
    envelope: Literal["native", "mudrex"] = Field(
        "native", description="Data envelope on /ws: native frames or the Mudrex proxy's shape."
    )
    shutdown_grace_s: float = Field(5.0, description="Time given to sessions to close on stop.")
    publish_max_batch: int = Field(1000, description="Events in one publish request.")
    publish_max_bytes: int = Field(
        1_048_576, description="Largest publish request body (REST) in bytes."
    )
    echo_endpoint: bool = Field(
        False, description="Expose /echo for WebSocket conformance tests only."
    )
    greet_004: bool = Field(
        False, description="Send the data services' connection_established frame on /ws for "
        "their clients that wait for it (native clients then get it first too)."
    )
    proxy_protocol: bool = Field(
        False, description="Every connection starts with a PROXY v1/v2 header (haproxy "
        "send-proxy-v2) naming the client; one without a valid header is dropped."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses/CIDRs whose X-Forwarded-For names the "
        "client; the header is ignored from anyone else."
    )
    max_rest_rate: int = Field(
        50, ge=0, description="REST requests per second per API key (anonymous: per client "
        "address), bursts of as many; over it 429 with Retry-After; 0 turns it off."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {entry!r} is not an address or CIDR") from exc
        return value

    @model_validator(mode="after")
    def _proxy_without_tls(self) -> ServerSettings:
        if self.proxy_protocol and self.tls_cert is not None:
            # The header precedes the TLS handshake: terminate TLS at the balancer.
            raise ValueError("proxy_protocol cannot be combined with tls_cert: terminate TLS "
                             "at the balancer")
        return self



class AuthSettings(Section):
    jwt_secret: SecretStr | None = Field(
        None, description="HS256 secret (>= 32 chars) for Bearer JWTs and /pg/<JWT> sockets."
    )
    jwt_scopes: bool = Field(
        False, description="Honour a Bearer JWT's 'scopes' claim as an API key's scopes; off, "
        "a JWT grants only the pg: channels its 'channels' claim names."
    )
    jwt_require_exp: bool = Field(
        True, description="Refuse a Bearer JWT without 'exp' (/pg/<JWT> sockets accept one)."
    )
    pg_read_keys: bool = Field(
        True, description="API keys with the read scope read every pg: channel; off, only "
        "admin keys and JWTs naming the channel do."
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("jwt_secret must be at least 32 characters")
        return value
