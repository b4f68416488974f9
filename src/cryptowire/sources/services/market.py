"""market_data and whale_tracking: read from the channels the node already carries.

Both hold demand on the channels they read (``ticker:<SYMBOL>``, ``swap:<chain>``,
``burn:<chain>``) while they run, exactly as a client subscription would, so the exchange or
chain source delivers them; then they read the broker's history, never a private copy.
Numbers go out as the seed's JSON numbers with the exact digits the sources gave (decimal
strings turned into number tokens by :func:`~cryptowire.jsonnum.number`, never
through float).
"""

from __future__ import annotations

import logging
from collections import deque
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptowire.clock import iso, now_ms
from cryptowire.errors import CryptowireError
from cryptowire.jsonnum import number
from cryptowire.sources.services.context import ServiceContext, latest, not_configured, stamp

log = logging.getLogger("cryptowire.sources.services")

#: A channel no source would serve is asked for again after this long.
RETRY_REFUSED_MS = 60_000


class ChannelHold:
    """Demand held on a set of channels, with the reason for each one refused."""

    def __init__(self, ctx: ServiceContext, names: list[str]) -> None:
        self._ctx = ctx
        self._wanted = names
        self.held: list[str] = []
        self.refused: dict[str, str] = {}
        self._refused_at: dict[str, int] = {}

    async def ensure(self) -> None:
        node = self._ctx.node
        now = now_ms()
        for name in self._wanted:
            if name in self.held or now - self._refused_at.get(name, -RETRY_REFUSED_MS) < \
                    RETRY_REFUSED_MS:
                continue
            try:
                channel = node.grammar.parse(name)
                await node.demand.acquire(channel)
            except CryptowireError as exc:
                self.refused[name] = exc.message
                self._refused_at[name] = now
                continue
            self.held.append(channel.name)
            self.refused.pop(name, None)

    async def close(self) -> None:
        for name in self.held:
            self._ctx.node.demand.release(name)
        self.held.clear()


class MarketData:
    """Prices, volumes, turnovers and 24h changes from the latest ticker publications.

    The seed keyed its maps by coin id (``data.prices.bitcoin``): each ticker symbol is
    reported under its ``services.coin_ids`` id (the symbol itself when it has none, or when
    another symbol already took that id); ``symbols`` maps each key back to its ticker.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        self._hold = ChannelHold(ctx, [f"ticker:{s}" for s in ctx.settings.services.market_symbols])
        self._ctx = ctx
        self._coin_ids = ctx.settings.services.coin_ids

    async def collect(self) -> dict[str, Any]:
        await self._hold.ensure()
        if not self._hold.held:
            reasons = "; ".join(sorted(set(self._hold.refused.values()))) or \
                "no symbols configured (services.market_symbols)"
            return not_configured(f"No ticker source: {reasons}")
        fields = {"prices": "price", "volumes": "volume24h", "turnovers": "turnover24h",
                  "price_changes": "change24hPercent", "high_24h": "high24h",
                  "low_24h": "low24h", "mark_prices": "markPrice"}
        out: dict[str, Any] = {key: {} for key in fields}
        updated: dict[str, str] = {}
        symbols: dict[str, str] = {}
        sources: set[str] = set()
        missing: list[str] = []
        for name in self._hold.held:
            pub = await latest(self._ctx.node.broker, name)
            if pub is None:
                missing.append(name.partition(":")[2])
                continue
            data = pub.data
            symbol = str(data.get("symbol") or name.partition(":")[2])
            coin = self._coin_ids.get(symbol, symbol)
            if coin in symbols:
                coin = symbol
            symbols[coin] = symbol
            for key, field in fields.items():
                out[key][coin] = number(data.get(field))
            updated[coin] = iso(pub.ts)
            if pub.source:
                sources.add(pub.source)
        out.update({
            "source": ",".join(sorted(sources)) or None, "symbols": symbols,
            "updated_at": updated, "missing": missing, "refused": dict(self._hold.refused),
        })
        return stamp(out)

    async def close(self) -> None:
        await self._hold.close()


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _public(tx: dict[str, Any]) -> dict[str, Any]:
    """A kept transaction as sent: its amounts as JSON numbers (kept as decimal strings)."""
    out = {**tx, "value": number(tx["value"])}
    if "token_amount" in tx:
        out["token_amount"] = number(tx["token_amount"])
    return out


class WhaleTracking:
    """Swaps and burns above the configured thresholds, read from the chain channels."""

    def __init__(self, ctx: ServiceContext) -> None:
        names = [f"{kind}:{c.name}" for c in ctx.settings.evm.chains for kind in ("swap", "burn")]
        self._ctx = ctx
        self._hold = ChannelHold(ctx, names)
        self._cursors: dict[str, tuple[str, int]] = {}
        cfg = ctx.settings.services
        self._min_paired = cfg.whale_min_paired_amount
        self._min_burn = cfg.whale_min_burn_amount
        self.large: deque[dict[str, Any]] = deque(maxlen=cfg.whale_max_transactions)

    async def _read(self, name: str) -> None:
        broker = self._ctx.node.broker
        epoch, top = await broker.position(name)
        cursor = self._cursors.get(name)
        if cursor is None or cursor[0] != epoch:
            # First look (or history was lost): take what history still holds.
            cursor = (epoch, max(0, top - self._ctx.settings.history.size))
        pubs = await broker.history_since(name, *cursor)
        if pubs is None:
            self._cursors[name] = (epoch, top)
            return
        for pub in pubs:
            tx = self._classify(name.partition(":")[0], pub.data, pub.source)
            if tx is not None:
                self.large.append(tx)
        self._cursors[name] = (epoch, pubs[-1].offset if pubs else cursor[1])

    def _classify(self, kind: str, data: Any, source: str) -> dict[str, Any] | None:
        if not isinstance(data, dict):
            return None
        common = {"kind": kind, "hash": data.get("tx_hash"), "chain": data.get("chain"),
                  "token": data.get("token"), "symbol": data.get("symbol"),
                  "block": data.get("block"), "source": source or None,
                  "timestamp": iso(data["time"]) if isinstance(data.get("time"), int) else None}
        if kind == "swap":
            paired = _decimal(data.get("paired_amount"))
            if paired is None or paired < self._min_paired:
                return None
            buy = data.get("side") == "buy"
            pair, taker = data.get("pair"), data.get("taker")
            return {**common, "side": data.get("side"), "value": data.get("paired_amount"),
                    "value_unit": "paired_token", "token_amount": data.get("token_amount"),
                    "from": pair if buy else taker, "to": taker if buy else pair}
        amount = _decimal(data.get("amount"))
        if amount is None or amount < self._min_burn:
            return None
        return {**common, "value": data.get("amount"), "value_unit": "token",
                "from": data.get("from"), "to": data.get("to")}

    async def collect(self) -> dict[str, Any]:
        await self._hold.ensure()
        if not self._hold.held:
            reasons = "; ".join(sorted(set(self._hold.refused.values())))
            return not_configured(f"No on-chain source: {reasons}")
        for name in self._hold.held:
            await self._read(name)
        wallets: dict[str, dict[str, Any]] = {}
        total = Decimal(0)
        for tx in self.large:
            if tx["kind"] != "swap":
                continue
            value = Decimal(tx["value"])
            total += value
            taker = tx["to"] if tx["side"] == "buy" else tx["from"]
            entry = wallets.setdefault(taker, {"address": taker, "transactions": 0,
                                               "volume": Decimal(0)})
            entry["transactions"] += 1
            entry["volume"] += value
        top = sorted(wallets.values(), key=lambda w: w["volume"], reverse=True)[:10]
        return stamp({
            "large_transactions": [_public(tx) for tx in reversed(self.large)],
            "whale_wallets": [{**w, "volume": number(w["volume"])} for w in top],
            "total_volume": number(total), "total_volume_unit": "paired_token",
            # The seed's one number, in the unit of total_volume; per kind below.
            "alert_threshold": number(self._min_paired), "alert_threshold_unit": "paired_token",
            "alert_thresholds": {"swap_paired_amount": number(self._min_paired),
                                 "burn_token_amount": number(self._min_burn)},
            "channels": list(self._hold.held), "refused": dict(self._hold.refused),
        })

    async def close(self) -> None:
        await self._hold.close()
