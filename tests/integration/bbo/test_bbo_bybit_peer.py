"""``bbo:BTCUSDT`` with Bybit linear from the replay peer (``orderbook.1.BTCUSDT``, the cut
of its 50-level recording, through the real BybitSource) and OKX injected through the
broker: the bbo names the venue whose price is best, with the venue's exact strings; a
sequence break upstream makes Bybit's book a ``gap`` and drops it from the bbo until the
source's fresh snapshot brings it back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.integration.bbo.support import OKX, BboReader, HubFactory, best
from tests.peers.bybit_peer import BybitPeer

from cryptowire.sources.bybit import BybitSource

pytestmark = pytest.mark.integration

TOPIC = "orderbook.1.BTCUSDT"


async def test_bybit_from_the_peer_and_okx_injected(hub_factory: HubFactory,
                                                    peer: BybitPeer) -> None:
    hub = await hub_factory(refuse={"binance": "no Binance source on this branch"},
                            bybit=BybitSource(peer.settings()))
    reader = BboReader(await hub.client())
    assert (await reader.subscribe())["success"] is True
    feed = peer.book(TOPIC)
    tops = lambda: ({bids[0][0] for bids, _ in feed.history.values() if bids},  # noqa: E731
                    {asks[0][0] for _, asks in feed.history.values() if asks})

    frame = await reader.until(lambda d: "bybit" in d["venues"], "bybit in the bbo")
    bybit = frame["data"]["venues"]["bybit"]
    bid_tops, ask_tops = tops()
    assert bybit["bid"][0] in bid_tops and bybit["ask"][0] in ask_tops  # the venue's strings
    assert best(frame["data"], "bid")[0] == "bybit"  # type: ignore[index]

    # OKX bids above Bybit's whole recording, asks above it: best bid okx, best ask bybit.
    high = max(Decimal(p) for p in bid_tops | ask_tops)
    okx_bid = f"{high + 1}"
    await hub.book(OKX, "snapshot", [[okx_bid, "0.25"]], [[f"{high + 2}", "1"]])
    frame = await reader.until(lambda d: "okx" in d["venues"], "okx in")
    assert best(frame["data"], "bid") == ("okx", okx_bid, "0.25")
    assert best(frame["data"], "ask")[0] == "bybit"  # type: ignore[index]

    # A break in Bybit's update ids: its book is a gap, the bbo goes on without it...
    peer.inject_u_gap(TOPIC)
    frame = await reader.until(lambda d: d["excluded"].get("bybit") == "gap", "bybit out")
    assert set(frame["data"]["venues"]) == {"okx"}
    assert best(frame["data"], "ask") == ("okx", f"{high + 2}", "1")
    # ...until the source re-synchronised and published a fresh snapshot.
    frame = await reader.until(lambda d: "bybit" in d["venues"], "bybit back")
    assert best(frame["data"], "ask")[0] == "bybit"  # type: ignore[index]
    assert frame["data"]["venues"]["bybit"]["ask"][0] in tops()[1]
