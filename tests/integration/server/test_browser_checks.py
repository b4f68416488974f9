"""Browser checks on every socket path, on real upgrades: a page of another origin is refused
by default (same-origin only; ``["*"]`` opts out), a client without ``Origin`` is not a
browser and passes, and a hub bound to loopback refuses a foreign ``Host`` (DNS rebinding)."""

from __future__ import annotations

import aiohttp
import pytest
from tests.integration.server.conftest import Hub, call

pytestmark = pytest.mark.integration

#: Every socket path; /pg is refused before its token is even read.
PATHS = ["/ws", "/ws/master", "/rfq", "/swaps", "/pg/not-a-token"]


async def _status(hub: Hub, path: str, headers: dict[str, str]) -> int:
    """The upgrade's answer: 101 when the socket opened, else the HTTP status."""
    try:
        ws = await hub.http.ws_connect(f"{hub.url}{path}", headers=headers,
                                       autoping=False, timeout=aiohttp.ClientWSTimeout(5))
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await ws.close()
    return 101


@pytest.mark.parametrize("path", PATHS)
async def test_a_page_of_another_origin_is_refused_by_default(hub: Hub, path: str) -> None:
    assert await _status(hub, path, {"Origin": "https://evil.example"}) == 403


@pytest.mark.parametrize("path", ["/ws", "/ws/master", "/rfq", "/swaps"])
async def test_the_hubs_own_pages_and_non_browsers_are_accepted(hub: Hub, path: str) -> None:
    assert await _status(hub, path, {"Origin": f"http://127.0.0.1:{hub.port}"}) == 101
    assert await _status(hub, path, {"Origin": f"http://localhost:{hub.port}",
                                     "Host": f"localhost:{hub.port}"}) == 101
    assert await _status(hub, path, {}) == 101  # no Origin: not a browser


async def test_same_host_on_another_port_is_another_origin(hub: Hub) -> None:
    assert await _status(hub, "/ws", {"Origin": "http://127.0.0.1:1"}) == 403
    assert await _status(hub, "/ws", {"Origin": "null"}) == 403


@pytest.mark.hub_settings(server={"allowed_origins": ["*"]})
async def test_star_accepts_every_origin(hub: Hub) -> None:
    assert await _status(hub, "/ws", {"Origin": "https://evil.example"}) == 101


@pytest.mark.parametrize("path", PATHS)
async def test_dns_rebinding_host_is_refused_on_loopback(hub: Hub, path: str) -> None:
    # The attacker's page is "same-origin" with its own name, which now points at 127.0.0.1.
    name = f"rebind.example:{hub.port}"
    status = await _status(hub, path, {"Host": name, "Origin": f"http://{name}"})
    assert status == 403


@pytest.mark.hub_settings(server={"allowed_hosts": ["hub.example"]})
async def test_allowed_hosts_adds_names(hub: Hub) -> None:
    name = f"hub.example:{hub.port}"
    assert await _status(hub, "/ws", {"Host": name, "Origin": f"http://{name}"}) == 101
    assert await _status(hub, "/ws", {"Host": f"other.example:{hub.port}"}) == 403


async def test_the_refusal_says_which_check(hub: Hub) -> None:
    async with hub.http.get(f"{hub.ws_url()}".replace("ws://", "http://"),
                            headers={"Host": "rebind.example", "Connection": "Upgrade",
                                     "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as resp:
        assert resp.status == 403
        assert await resp.json() == {
            "error": "Host 'rebind.example' is not allowed (server.allowed_hosts)"}
    ws = await hub.connect(origin=f"http://127.0.0.1:{hub.port}")  # websockets, same-origin
    assert (await call(ws, {"op": "ping"}))["op"] == "pong"
