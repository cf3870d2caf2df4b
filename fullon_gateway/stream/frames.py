"""Wire frames, built from bytes so a change is encoded once for every socket.

A change frame is ``{"action": "<stream>_update", "request_id", "stream_key", "seq",
"result"}``. Its head (action, request_id, stream_key) is fixed per subscription and
pre-encoded once; its tail (seq and result) is built once per change by the fan-out
and shared by every socket. Sending a change to a socket is one bytes concatenation.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from fullon_gateway import jsonutil
from fullon_gateway.stream.fullon.decode import decode_change

_DATA_MARK = b',"data":'

# RFC 6455 section 5.2, a server's frame: FIN + opcode 1 (text), no mask, no RSV bits
# (never compressed: connection.py writes directly only without permessage-deflate).
_FIN_TEXT = 0x81
_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack
_SHORT = tuple(bytes((_FIN_TEXT, n)) for n in range(126))


class Change(NamedTuple):
    seq: int | None
    prev: int
    key: str | None
    data: dict[str, Any]
    ts: float | None  # publisher time, epoch ms
    tail: bytes
    nonfinite: int = 0  # NaN/Infinity read as null (fullon values only)


def parse_change(raw: bytes) -> Change:
    """A publisher message (see publish.py) -> Change; ValueError when malformed.

    ``data`` is the message's last member: its JSON text is reused as the result
    without re-encoding (the members before it are short and cannot contain the mark,
    since a quote inside a JSON string is always escaped).
    """
    msg = jsonutil.loads(raw)
    if isinstance(msg, dict) and msg.get("src") == "fullon":
        return fullon_change(msg)
    if not isinstance(msg, dict) or not isinstance(msg.get("data"), dict):
        raise ValueError("not a gateway change")
    seq = int(msg["seq"])
    data_raw = raw[raw.index(_DATA_MARK) + len(_DATA_MARK):raw.rindex(b"}")]
    tail = b'"seq":%d,"result":%s}' % (seq, data_raw)
    return Change(seq, int(msg.get("prev") or 0), msg.get("key"), msg["data"],
                  msg.get("ts"), tail)


def fullon_change(msg: dict[str, Any]) -> Change:
    """A change the fullon sequencer made from a fullon write (fullon/sequencer.py):
    its value is decoded leniently and shaped here, once per process."""
    seq = int(msg["seq"])
    decoded = decode_change(msg)
    tail = b'"seq":%d,"result":%s}' % (seq, jsonutil.dumps(decoded.data))
    return Change(seq, int(msg.get("prev") or 0), decoded.key, decoded.data, msg.get("ts"),
                  tail, decoded.nonfinite)


def ws_text_header(length: int) -> bytes:
    """The header of an unmasked, uncompressed, final text frame of ``length`` bytes."""
    if length < 126:
        return _SHORT[length]
    if length < 65536:
        return _LEN16(_FIN_TEXT, 126, length)
    return _LEN64(_FIN_TEXT, 127, length)


def head(stream: str, request_id: Any, stream_key: str) -> bytes:
    return (b'{"action":' + jsonutil.dumps(stream + "_update") + b',"request_id":'
            + jsonutil.dumps(request_id) + b',"stream_key":' + jsonutil.dumps(stream_key)
            + b",")


def reply(request_id: Any, action: str, result: Any) -> bytes:
    return jsonutil.dumps({"request_id": request_id, "action": action, "success": True,
                           "result": result})


def error(request_id: Any, action: str | None, code: str, message: str) -> bytes:
    return jsonutil.dumps({"request_id": request_id, "action": action, "success": False,
                           "error_code": code, "error": message})


def snapshot(stream: str, request_id: Any, stream_key: str, seq: int,
             result: dict[str, Any], recovered: bool | None) -> bytes:
    body: dict[str, Any] = {"action": stream + "_update", "request_id": request_id,
                            "stream_key": stream_key, "seq": seq, "snapshot": True}
    if recovered is not None:
        body["recovered"] = recovered
    body["result"] = result
    return jsonutil.dumps(body)


def notice(action: str, **fields: Any) -> bytes:
    return jsonutil.dumps({"action": action, **fields})
