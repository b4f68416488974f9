"""``cryptowire record``: capture Bybit V5 public frames into the replay fixture format.

Connects to one Bybit public stream (``bybit.linear_url`` or ``bybit.spot_url`` from the
settings, or ``--url``), subscribes the given channels, and writes every topic frame it
receives, as received, one per line, to a JSONL file: the format of
``tests/fixtures/bybit/<category>.jsonl`` that the replay peer (``tests/peers/bybit_peer.py``)
streams. Acks and pongs are not written. It stops after ``--seconds`` or ``--frames``,
whichever comes first, and sends ``{"op":"ping"}`` every 20 s meanwhile, as Bybit asks.

Channels are cryptowire channels (``ticker:BTCUSDT``, ``kline:1h:ETHUSDT``,
``trade:BTCUSDT@spot``) or Bybit topic names (``tickers.BTCUSDT``, ``kline.60.ETHUSDT``,
``publicTrade.BTCUSDT``, on ``--category``); all of one recording are on one category, as a
fixture file is. Each topic is subscribed in a request of its own, so a refused topic is
named with Bybit's reason and the others still flow.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, TextIO

import aiohttp
import orjson
import typer

from cryptowire.core.channels import ChannelGrammar
from cryptowire.errors import ChannelError, ConfigError, SourceError
from cryptowire.settings import load_settings
from cryptowire.sources.bybit.codec import is_refusal
from cryptowire.sources.bybit.parser import Ack, DataFrame, MalformedFrameError, parse_frame
from cryptowire.sources.bybit.topics import (
    Category,
    build_requests,
    category_of,
    ping_request,
    topic_for,
)

log = logging.getLogger("cryptowire.cli.record")

PING_INTERVAL_S = 20.0
CONNECT_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Recording:
    """What one capture did."""

    url: str
    topics: list[str]
    frames: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # topic -> Bybit's ret_msg
    acked: set[str] = field(default_factory=set)
    malformed: int = 0
    seconds: float = 0.0


def resolve_topics(args: list[str], default: Category) -> tuple[Category, list[str]]:
    """The category and Bybit topic names of ``args``; :class:`ValueError` saying why not."""
    grammar = ChannelGrammar(default_venue=default)
    categories: set[Category] = set()
    topics: list[str] = []
    for arg in args:
        try:
            channel = grammar.parse(arg)
            if channel.kind not in ("ticker", "trade", "kline"):
                raise ValueError(f"{arg}: only ticker, trade and kline channels come from Bybit")
            topic = topic_for(channel).name
            categories.add(category_of(channel, default))
        except ChannelError as exc:
            raise ValueError(f"{arg}: {exc.reason}") from exc
        except SourceError as exc:
            raise ValueError(f"{arg}: {exc}") from exc
        if topic not in topics:
            topics.append(topic)
    if len(categories) > 1:
        raise ValueError("all channels of one recording must be on one category (a fixture "
                         "file is one category): record linear and @spot channels separately")
    return (categories.pop() if categories else default), topics


def _line(raw: str) -> str:
    """The frame as one JSONL line: as received, or compacted if it spans lines."""
    if "\n" in raw or "\r" in raw:
        return orjson.dumps(orjson.loads(raw)).decode()
    return raw


def _take(raw: str, result: Recording, pending: dict[str, str], out: TextIO) -> bool:
    """Account one text frame of the stream, writing it out when it is data; True once
    every topic asked for was refused (nothing will come)."""
    try:
        frame = parse_frame(raw)
    except MalformedFrameError as exc:
        result.malformed += 1
        log.warning("skipped a frame (%s): %.200s", exc.reason, raw)
        return False
    if isinstance(frame, Ack):
        asked = pending.pop(frame.req_id, None) if frame.req_id else None
        if asked is not None and is_refusal(frame):
            result.refused[asked] = frame.ret_msg or "refused"
        elif asked is not None:
            result.acked.add(asked)
        return pending == {} and len(result.refused) == len(result.topics)
    if isinstance(frame, DataFrame):
        out.write(_line(raw) + "\n")
        result.frames += 1
        name = frame.topic.name
        result.per_topic[name] = result.per_topic.get(name, 0) + 1
    return False


async def capture(
    url: str,
    topics: list[str],
    out: TextIO,
    *,
    seconds: float,
    max_frames: int = 0,
    ping_interval_s: float = PING_INTERVAL_S,
) -> Recording:
    """Subscribe ``topics`` at ``url`` and write their frames to ``out`` until ``seconds``
    passed or ``max_frames`` (0: no limit) were written."""
    result = Recording(url=url, topics=list(topics), per_topic=dict.fromkeys(topics, 0))
    loop = asyncio.get_running_loop()
    started = loop.time()
    ids = itertools.count(1)
    pending: dict[str, str] = {}  # req_id -> topic
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            ws = await http.ws_connect(
                url, autoping=True, heartbeat=None,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
            )
        try:
            for topic in topics:  # one request per topic: a refusal names its topic
                [request] = build_requests("subscribe", [topic], lambda: f"rec-{next(ids)}")
                pending[request["req_id"]] = topic
                await ws.send_str(orjson.dumps(request).decode())
            deadline = started + seconds
            next_ping = loop.time() + ping_interval_s
            while max_frames <= 0 or result.frames < max_frames:
                now = loop.time()
                if now >= deadline:
                    break
                if now >= next_ping:
                    await ws.send_str(orjson.dumps(ping_request()).decode())
                    next_ping = now + ping_interval_s
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
                if _take(msg.data, result, pending, out):
                    break  # nothing will come
        finally:
            await ws.close()
    out.flush()
    result.seconds = loop.time() - started
    return result


def record(
    channels: Annotated[list[str], typer.Argument(
        help="Channels (ticker:BTCUSDT, kline:1h:ETHUSDT, trade:BTCUSDT@spot) or Bybit "
             "topics (tickers.BTCUSDT, kline.60.ETHUSDT, publicTrade.BTCUSDT).")],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="JSONL file to write (default ./<category>.jsonl; overwritten).")]
        = None,
    seconds: Annotated[float, typer.Option(help="Stop after this many seconds.")] = 60.0,
    frames: Annotated[int, typer.Option(help="Stop after this many frames (0: no limit).")] = 0,
    url: Annotated[str | None, typer.Option(
        help="Stream URL (default bybit.linear_url or bybit.spot_url from the settings).")]
        = None,
    category: Annotated[Literal["linear", "spot"] | None, typer.Option(
        help="Category of channels without @venue (default bybit.default_category).")]
        = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="TOML settings file (default ./cryptowire.toml).")] = None,
) -> None:
    """Record Bybit V5 public frames to a JSONL file, one raw frame per line (replayable)."""
    err = sys.stderr
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        print(exc.message, file=err)
        raise typer.Exit(2) from exc
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    default: Category = category or settings.bybit.default_category
    try:
        chosen, topics = resolve_topics(channels, default)
    except ValueError as exc:
        print(f"Cannot record: {exc}", file=err)
        raise typer.Exit(2) from exc
    if seconds <= 0:
        print("Cannot record: --seconds must be positive.", file=err)
        raise typer.Exit(2)
    stream = url or (settings.bybit.linear_url if chosen == "linear" else settings.bybit.spot_url)
    path = out or Path(f"{chosen}.jsonl")
    print(f"Recording {', '.join(topics)} from {stream} to {path} (up to {seconds:g} s"
          + (f" or {frames} frames" if frames > 0 else "") + ")", file=err)
    wall = time.monotonic()
    try:
        with path.open("w", encoding="utf-8") as fh:
            result = asyncio.run(capture(stream, topics, fh, seconds=seconds, max_frames=frames))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(f"Cannot connect to {stream}: {type(exc).__name__}: {exc}", file=err)
        raise typer.Exit(1) from exc
    for topic, reason in result.refused.items():
        print(f"refused: {topic} ({reason})", file=err)
    counts = ", ".join(f"{t} {n}" for t, n in result.per_topic.items())
    print(f"Recorded {result.frames} frames in {time.monotonic() - wall:.1f} s to {path} "
          f"({counts}" + (f"; {result.malformed} malformed skipped" if result.malformed else "")
          + ")", file=err)
    if len(result.refused) == len(topics):
        raise typer.Exit(1)
