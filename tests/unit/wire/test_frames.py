"""RFC 6455 server frames: header bytes at every length boundary (section 5.2), checked by
hand and by the websockets library's own frame parser."""

from __future__ import annotations

import struct

import pytest
from websockets.frames import Close, Frame, Opcode
from websockets.streams import StreamReader

from cryptowire.wire.frames import close_frame, text_frame


def parse(data: bytes) -> Frame:
    """Parse one server frame with websockets' sans-I/O parser (client side: unmasked)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    gen = Frame.parse(reader.read_exact, mask=False)
    try:
        next(gen)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize(("n", "header"), [
    (0, b"\x81\x00"),
    (1, b"\x81\x01"),
    (125, b"\x81\x7d"),
    (126, b"\x81\x7e\x00\x7e"),
    (127, b"\x81\x7e\x00\x7f"),
    (65535, b"\x81\x7e\xff\xff"),
    (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    (70000, b"\x81\x7f" + struct.pack("!Q", 70000)),
])
def test_text_frame_length_encoding(n: int, header: bytes) -> None:
    payload = b"a" * n
    frame = text_frame(payload)
    assert frame[: len(header)] == header
    assert frame[len(header):] == payload
    assert len(frame) == len(header) + n
    parsed = parse(frame)
    assert parsed.opcode is Opcode.TEXT and parsed.fin and parsed.data == payload


def test_text_frame_is_fin_unmasked_no_rsv() -> None:
    b0, b1 = text_frame(b'{"op":"pong"}')[:2]
    assert b0 == 0x81  # FIN, RSV1-3 clear, opcode 1
    assert not b1 & 0x80  # server frames are never masked (section 5.1)


def test_the_minimal_length_form_is_always_used() -> None:
    # Section 5.2: "the minimal number of bytes MUST be used to encode the length".
    assert text_frame(b"x" * 125)[1] == 125
    assert text_frame(b"x" * 65535)[1] == 126
    assert text_frame(b"x" * 65536)[1] == 127


def test_utf8_payload() -> None:
    payload = '{"name":"Ünïcödé €"}'.encode()
    assert parse(text_frame(payload)).data.decode() == '{"name":"Ünïcödé €"}'


def test_close_frame() -> None:
    frame = close_frame(4008, "Slow consumer")
    assert frame[:2] == bytes((0x88, 2 + len("Slow consumer")))
    assert frame[2:4] == struct.pack("!H", 4008)
    parsed = parse(frame)
    assert parsed.opcode is Opcode.CLOSE
    close = Close.parse(parsed.data)
    assert (close.code, close.reason) == (4008, "Slow consumer")


def test_close_frame_without_reason() -> None:
    assert close_frame(1001) == b"\x88\x02\x03\xe9"


def test_close_reason_is_cut_to_fit_a_control_frame() -> None:
    frame = close_frame(4001, "x" * 500)
    assert frame[1] == 125  # control frames carry at most 125 bytes (section 5.5)
    assert Close.parse(parse(frame).data).reason == "x" * 123


def test_close_reason_is_cut_on_a_character_boundary() -> None:
    # The reason must stay valid UTF-8 (section 5.5.1; clients fail the connection with
    # 1007 otherwise), so a multi-byte character is never split.
    frame = close_frame(4001, "é" * 100)  # 200 bytes
    payload = parse(frame).data
    assert len(payload) <= 125
    close = Close.parse(payload)
    assert close.code == 4001 and close.reason == "é" * 61
