"""wire: frames <-> fields, signing, and the one JSON peeker (peek_field)."""

from __future__ import annotations

import json

import pytest

from krec.recorder.wire import (
    DELIM,
    Signer,
    WireError,
    make_header,
    peek_field,
    peek_msg_id,
    serialize,
    split_frames,
)

# -- peek_field -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'{"msg_id": "a", "msg_type": "stream"}', "stream"),
        (b'{"msg_type":"stream"}', "stream"),
        (b'{"msg_type": null}', None),
        (b'{"x": 1}', None),
        (b'{"username": "\\"msg_type\\": \\"evil\\"", "msg_type": "good"}', "good"),
        (b'{"nested": {"msg_type": "inner"}, "msg_type": "outer"}', "outer"),
        (b'{"msg_type": "caf\\u00e9"}', "café"),
        (b'{"msg_type": 3}', None),
        (b"not json", None),
    ],
)
def test_peek_field_is_exact(frame, expected):
    assert peek_field(frame, b'"msg_type"') == expected


def test_peek_field_peeks_what_the_viewer_needs() -> None:
    # once viewer/exchanges.json_value's test: the same frames, through the one peeker
    frame = b'{"msg_id": "a1_2_3", "msg_type":"status", "n": 4, "empty": ""}'
    assert peek_field(frame, b'"msg_id"') == "a1_2_3"
    assert peek_field(frame, b'"msg_type"') == "status"
    assert peek_field(frame, b'"n"') is None  # not a string
    assert peek_field(frame, b'"empty"') == ""
    assert peek_field(frame, b'"missing"') is None
    assert peek_field(b'{"msg_id"', b'"msg_id"') is None
    assert peek_field(b'{"msg_id": "unterminated', b'"msg_id"') is None


def test_peek_msg_id_is_peek_field_or_empty() -> None:
    assert peek_msg_id(b'{"msg_id": "m-1", "msg_type": "status"}') == "m-1"
    assert peek_msg_id(b"{}") == ""
    assert peek_msg_id(b"") == ""


# -- frames and signing -----------------------------------------------------------------


def test_serialize_and_split_frames_round_trip() -> None:
    signer = Signer(b"secret")
    header = make_header("execute_request", "session-1")
    frames = serialize(signer, header, {"code": "1"}, parent=b"{}", ids=[b"who"])
    msg = split_frames(frames)
    assert msg.ids == [b"who"]
    assert json.loads(msg.header)["msg_type"] == "execute_request"
    assert msg.parent == b"{}" and json.loads(msg.content) == {"code": "1"}
    assert signer.verify(msg.signature, msg.signed_parts)
    assert not Signer(b"other").verify(msg.signature, msg.signed_parts)
    assert frames[1] == DELIM


def test_split_frames_names_what_is_wrong() -> None:
    with pytest.raises(WireError, match="delimiter"):
        split_frames([b"a", b"b"])
    with pytest.raises(WireError, match="expected at least 5"):
        split_frames([DELIM, b"sig", b"{}"])


def test_an_empty_key_signs_nothing() -> None:
    signer = Signer(b"")
    assert not signer.enabled and signer.sign([b"{}"]) == b""
    assert signer.verify(b"anything", [b"{}"])
