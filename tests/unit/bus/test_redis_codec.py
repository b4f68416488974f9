"""The Redis broker's wire format and its selection by URL scheme (no Redis needed)."""

from __future__ import annotations

import pytest

from cryptowire.bus import create_broker
from cryptowire.bus.memory import MemoryBroker
from cryptowire.bus.redis import RedisBroker, decode_message, decode_payload, encode_payload
from cryptowire.cluster.demand import ClusterDemand
from cryptowire.cluster.factory import create_cluster
from cryptowire.core.demand import Demand
from cryptowire.errors import ConfigError
from cryptowire.events import Event
from cryptowire.settings import Settings


def test_payload_round_trip_keeps_exact_decimals_and_fields() -> None:
    event = Event(channel="ticker:BTCUSDT", data={"price": "66000.10", "s": "a\nb ü"},
                  type="snapshot", ts_source=123, ts_received=456, source="bybit")
    payload, data_json = encode_payload(event)
    pub = decode_payload("ticker:BTCUSDT", "e1", 7, payload)
    assert (pub.type, pub.ts, pub.ts_received, pub.source) == ("snapshot", 123, 456, "bybit")
    assert (pub.epoch, pub.offset) == ("e1", 7)
    assert pub.data_json == data_json
    assert pub.data == {"price": "66000.10", "s": "a\nb ü"}


def test_pubsub_message_carries_epoch_and_offset() -> None:
    payload, _ = encode_payload(Event(channel="app:x", data=[1, "2"], ts_received=5))
    pub = decode_message("app:x", b"ab12cd34\n42\n" + payload)
    assert (pub.channel, pub.epoch, pub.offset, pub.ts, pub.data) == (
        "app:x", "ab12cd34", 42, 5, [1, "2"])


def test_broker_and_demand_are_chosen_by_url_scheme() -> None:
    memory = Settings()
    assert isinstance(create_broker(memory), MemoryBroker)
    redis = Settings(bus={"url": "redis://127.0.0.1:1/0", "prefix": "x"})
    broker = create_broker(redis)
    assert isinstance(broker, RedisBroker) and broker.prefix == "x"
    assert isinstance(create_cluster(redis, lambda ch: None, broker).demand, ClusterDemand)
    plain = create_cluster(memory, lambda ch: None, create_broker(memory)).demand
    assert type(plain) is Demand
    with pytest.raises(ConfigError):
        create_broker(Settings(bus={"url": "kafka://x"}))
