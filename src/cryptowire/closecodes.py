"""Close codes cryptowire sends, in one place, with the advice a client should follow.

4000-4999 are cryptowire's own (RFC 6455 section 7.4.2 leaves them to applications).
A low-level module: it imports nothing from cryptowire. The ``CLOSE_*`` integers are the
same codes for callers that only need the number.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CloseCode:
    code: int
    name: str
    meaning: str
    reconnect: str


GOING_AWAY = CloseCode(1001, "going_away", "The server is shutting down.",
                       "Reconnect with backoff; recover from your last epoch/offset.")
MESSAGE_TOO_BIG = CloseCode(1009, "message_too_big",
                            "A client frame was larger than server.max_frame_bytes.",
                            "Send smaller frames; reconnecting is safe.")
UNAUTHORIZED = CloseCode(4001, "unauthorized",
                         "Missing, unknown or malformed API key, or none within "
                         "server.auth_timeout_s where one is needed.",
                         "Do not retry with the same key.")
SERVER_FULL = CloseCode(4003, "server_full",
                        "Connection limit reached (server total, per key or address, or "
                        "the keyless share).",
                        "Retry later with backoff.")
FORBIDDEN_ORIGIN = CloseCode(4004, "forbidden_origin",
                             "The browser Origin is not in server.allowed_origins.",
                             "Do not retry from this origin.")
SLOW_CONSUMER = CloseCode(4008, "slow_consumer",
                          "The client read too slowly; its outbound buffer filled (or the "
                          "node's, and it held the most).",
                          "Reconnect and recover; read faster or subscribe to less.")
RATE_LIMITED = CloseCode(4009, "rate_limited",
                         "The client kept sending faster than server.max_inbound_rate.",
                         "Reconnect after a pause and send less.")
KEY_REVOKED = CloseCode(4010, "key_revoked", "The API key of this session was revoked.",
                        "Do not retry with the same key.")

PING_TIMEOUT = CloseCode(4011, "ping_timeout",
                         "No pong to the server's ping within half of server.ping_interval_s.",
                         "Reconnect and recover; let your WebSocket library answer pings.")

INTERNAL_ERROR = CloseCode(1011, "internal_error",
                           "The server failed while serving this connection.",
                           "Reconnect with backoff; recover from your last epoch/offset.")
#: postgres-websockets (seed 002) closes a socket whose JWT expired with 3001.
JWT_EXPIRED = CloseCode(3001, "jwt_expired", "The session's JWT expired (seed 002 sockets).",
                        "Reconnect with a fresh token.")

#: The codes the native protocol documents (a client maps these to advice).
ALL: tuple[CloseCode, ...] = (
    GOING_AWAY, MESSAGE_TOO_BIG, UNAUTHORIZED, SERVER_FULL, FORBIDDEN_ORIGIN,
    SLOW_CONSUMER, RATE_LIMITED, KEY_REVOKED, PING_TIMEOUT,
)

CLOSE_GOING_AWAY = GOING_AWAY.code
CLOSE_INTERNAL_ERROR = INTERNAL_ERROR.code
CLOSE_JWT_EXPIRED = JWT_EXPIRED.code
CLOSE_KEY_REVOKED = KEY_REVOKED.code
CLOSE_SLOW_CONSUMER = SLOW_CONSUMER.code
