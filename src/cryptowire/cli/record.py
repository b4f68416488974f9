"""``cryptowire record``: capture a venue's public frames into the replay fixture format.

Connects to one socket of one venue's market (``--venue bybit`` by default; any venue
declared in :mod:`cryptowire.sources.exchange.registry`), at the endpoint URL of the
settings (for Bybit ``bybit.linear_url`` or ``bybit.spot_url``) or ``--url``, subscribes
the streams of the given channels with the venue's own requests, and writes every data frame
it receives, as received, one per line, to a JSONL file: the format of
``tests/fixtures/bybit/<category>.jsonl`` that the replay peers stream. Acks and pongs are
not written. It stops after ``--seconds`` or ``--frames``, whichever comes first, and keeps
the socket alive as the venue asks meanwhile (Bybit: ``{"op":"ping"}`` every 20 s).

Channels are cryptowire channels (``ticker:BTCUSDT``, ``kline:1h:ETHUSDT``,
``trade:BTCUSDT@spot``, ``book:50:BTCUSDT@binance``) or Bybit topic names
(``tickers.BTCUSDT``, ``kline.60.ETHUSDT``, ``publicTrade.BTCUSDT``, on ``--category``); all
of one recording are on one market and one endpoint (one socket), as a fixture file is
(``--endpoint`` keeps the streams of one endpoint when the channels need several). Each
stream is subscribed in a request of its own, so a refused stream is named with the venue's
reason and the others still flow.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, TextIO

import aiohttp
import orjson
import typer

from cryptowire.core.channels import ChannelGrammar
from cryptowire.errors import ChannelError, ConfigError, SourceError
from cryptowire.settings import load_settings
from cryptowire.sources.exchange.codec import Ack, Data, Reply
from cryptowire.sources.exchange.registry import VENUES, declare
from cryptowire.sources.exchange.venue import Market, Stream, Venue, kinds_text

log = logging.getLogger("cryptowire.cli.record")

CONNECT_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Recording:
    """What one capture did."""

    url: str
    topics: list[str]  # the stream keys subscribed
    frames: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # stream -> the venue's reason
    acked: set[str] = field(default_factory=set)
    malformed: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class Plan:
    """What to record: the market, the endpoint and its streams."""

    market: Market
    endpoint: str
    streams: list[Stream]


def resolve(venue: Venue, args: list[str], default: str, endpoint: str | None = None) -> Plan:
    """The market, endpoint and streams of ``args``; :class:`ValueError` saying why not."""
    grammar = ChannelGrammar(default_venue=default)
    markets: dict[str, Market] = {}
    streams: dict[str, Stream] = {}
    for arg in args:
        try:
            channel = grammar.parse(arg)
            market = venue.market_of(channel)
            if channel.kind not in market.kinds:
                raise ValueError(f"{arg}: only {kinds_text(market.kinds)} channels come from "
                                 f"{venue.title}")
            topic = market.topic(channel, market)
        except ChannelError as exc:
            raise ValueError(f"{arg}: {exc.reason}") from exc
        except SourceError as exc:
            raise ValueError(f"{arg}: {exc}") from exc
        markets[market.key] = market
        for stream in topic.streams:
            streams.setdefault(stream.key, stream)
    if len(markets) > 1:
        raise ValueError("all channels of one recording must be on one category (a fixture "
                         f"file is one market's socket): record {' and '.join(markets)} "
                         "channels separately")
    market = next(iter(markets.values()), venue.markets[default])
    endpoints = sorted({s.endpoint for s in streams.values()})
    if endpoint is None and len(endpoints) > 1:
        raise ValueError(f"these channels need the endpoints {', '.join(endpoints)}: record "
                         "one at a time with --endpoint")
    chosen = endpoint or (endpoints[0] if endpoints else next(iter(market.endpoints)))
    if chosen not in market.endpoints:
        raise ValueError(f"{venue.title} {market.label} has no endpoint '{chosen}' (it has "
                         f"{', '.join(market.endpoints)})")
    return Plan(market, chosen, [s for s in streams.values() if s.endpoint == chosen])


def _line(raw: str) -> str:
    """The frame as one JSONL line: as received, or compacted if it spans lines."""
    if "\n" in raw or "\r" in raw:
        return orjson.dumps(orjson.loads(raw)).decode()
    return raw


def _take(market: Market, raw: str, result: Recording, pending: dict[str, str],
          out: TextIO) -> tuple[bool, list[str]]:
    """Account one text frame of the stream, writing it out when it carries data; ``(every
    stream asked for was refused, replies to send)``."""
    try:
        items = market.codec.parse(raw)
    except (ValueError, KeyError, TypeError) as exc:
        result.malformed += 1
        log.warning("skipped a frame (%s): %.200s", exc, raw)
        return False, []
    data = [item for item in items if isinstance(item, Data)]
    if data:
        out.write(_line(raw) + "\n")
        result.frames += 1
        for item in data:
            result.per_topic[item.stream] = result.per_topic.get(item.stream, 0) + 1
    for ack in items:
        if isinstance(ack, Ack) and (asked := pending.pop(ack.req_id or "", None)):
            if ack.ok:
                result.acked.add(asked)
            else:
                result.refused[asked] = ack.reason or "refused"
    done = not pending and len(result.refused) == len(result.topics)
    return done, [item.text for item in items if isinstance(item, Reply)]


async def capture(market: Market, url: str, streams: list[Stream], out: TextIO, *,
                  seconds: float, max_frames: int = 0) -> Recording:
    """Subscribe ``streams`` at ``url`` and write their frames to ``out`` until ``seconds``
    passed or ``max_frames`` (0: no limit) were written."""
    keys = [s.key for s in streams]
    result = Recording(url=url, topics=keys, per_topic=dict.fromkeys(keys, 0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    pending: dict[str, str] = {}  # req_id -> stream
    ping, every = market.ping.text, market.ping.interval_s
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            ws = await http.ws_connect(
                url, autoping=True, heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
            )
        try:
            for n, stream in enumerate(streams, 1):  # one request each: a refusal is named
                req_id, request = market.requests("subscribe", [stream.request_arg], n)
                pending[req_id] = stream.key
                await ws.send_str(request if isinstance(request, str)
                                  else orjson.dumps(request).decode())
            deadline = started + seconds
            next_ping = loop.time() + every
            while max_frames <= 0 or result.frames < max_frames:
                now = loop.time()
                if now >= deadline:
                    break
                if ping is not None and now >= next_ping:
                    await ws.send_str(ping)
                    next_ping = now + every
                try:
                    msg = await ws.receive(timeout=min(deadline, next_ping) - now)
                except TimeoutError:
                    continue
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    log.warning("the stream closed after %d frames (%s)", result.frames,
                                ws.exception() or ws.close_code)
                    break
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                done, replies = _take(market, msg.data, result, pending, out)
                for reply in replies:
                    await ws.send_str(reply)
                if done:
                    break  # nothing will come
        finally:
            await ws.close()
    out.flush()
    result.seconds = loop.time() - started
    return result


def _fail(message: str, code: int) -> typer.Exit:
    print(message, file=sys.stderr)
    return typer.Exit(code)


def record(
    channels: Annotated[list[str], typer.Argument(
        help="Channels (ticker:BTCUSDT, kline:1h:ETHUSDT, trade:BTCUSDT@spot, "
             "book:50:BTCUSDT@binance) or Bybit topics (tickers.BTCUSDT, kline.60.ETHUSDT, "
             "publicTrade.BTCUSDT).")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="JSONL file to write (default ./<market>.jsonl; overwritten).")]
        = None,
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds.")] = 60.0,
    frames: Annotated[int, typer.Option(help="Stop after this many frames (0: no limit).")] = 0,
    venue: Annotated[str, typer.Option(
        help=f"Venue to record: {', '.join(VENUES)} (those declared on this build).")]
        = "bybit",
    url: Annotated[str | None, typer.Option(
        help="Stream URL (default: the endpoint's URL from the settings, e.g. "
             "bybit.linear_url or bybit.spot_url).")] = None,
    category: Annotated[str | None, typer.Option(
        help="Market of channels without @venue (default bybit.default_category for Bybit, "
             "the venue's default market otherwise).")] = None,
    endpoint: Annotated[str | None, typer.Option(
        help="Record only the streams of this endpoint of the market (e.g. public, market, "
             "business) when the channels need several.")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="TOML settings file (default ./cryptowire.toml).")] = None,
) -> None:
    """Record a venue's public frames to a JSONL file, one raw frame per line (replayable)."""
    err = sys.stderr
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise _fail(exc.message, 2) from exc
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if venue not in VENUES:
        raise _fail(f"Cannot record: venue '{venue}' is not declared on this build (declared: "
                    f"{', '.join(VENUES)}).", 2)
    declared = declare(venue, getattr(settings, venue))
    default = category or declared.default_market
    try:
        if default not in declared.markets:
            raise ValueError(f"{declared.title} has no market '{default}' (it has "
                             f"{', '.join(declared.markets)})")
        plan = resolve(declared, channels, default, endpoint)
    except ValueError as exc:
        raise _fail(f"Cannot record: {exc}", 2) from exc
    if seconds <= 0:
        raise _fail("Cannot record: --seconds must be positive.", 2)
    stream = url or plan.market.endpoints[plan.endpoint]
    multi = len(plan.market.endpoints) > 1
    path = out or Path(f"{plan.market.key}" + (f"-{plan.endpoint}" if multi else "") + ".jsonl")
    keys = [s.key for s in plan.streams]
    print(f"Recording {', '.join(keys)} from {stream} to {path} (up to {seconds:g} s"
          + (f" or {frames} frames" if frames > 0 else "") + ")", file=err)
    wall = time.monotonic()
    try:
        with path.open("w", encoding="utf-8") as fh:
            result = asyncio.run(capture(plan.market, stream, plan.streams, fh,
                                         seconds=seconds, max_frames=frames))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise _fail(f"Cannot connect to {stream}: {type(exc).__name__}: {exc}", 1) from exc
    _summary(result, path, time.monotonic() - wall)
    if len(result.refused) == len(keys):
        raise typer.Exit(1)


def _summary(result: Recording, path: Path, elapsed: float) -> None:
    err = sys.stderr
    for topic, reason in result.refused.items():
        print(f"refused: {topic} ({reason})", file=err)
    counts = ", ".join(f"{t} {n}" for t, n in result.per_topic.items())
    print(f"Recorded {result.frames} frames in {elapsed:.1f} s to {path} ({counts}"
          + (f"; {result.malformed} malformed skipped" if result.malformed else "") + ")",
          file=err)
