"""How values become the indicator index's keys: observed addresses as ints (IPv4)
or text, hashes as bytes, IPv4 networks back to their stored text; a batch converted
in C where it can, one value at a time where something odd is among them."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from socket import AF_INET, inet_ntoa, inet_pton
from typing import Any

import pytricia


def addr_keys(values: Sequence[str]) -> tuple[list[Any], bool]:
    """Each value's key in the address table, and whether all are IPv4 addresses."""
    try:  # the usual batch: IPv4 addresses only, converted in C
        return list(map(int.from_bytes, map(inet_pton, repeat(AF_INET), values))), True
    except (OSError, ValueError):  # something else among them: one at a time
        return [addr_key(v) for v in values], False


def addr_key(value: str) -> int | str:
    """An IPv4 address as its int (inet_pton reads only the dotted quad addresses are
    stored as: equal ints are equal strings); anything else as given."""
    if ":" not in value:
        try:
            return int.from_bytes(inet_pton(AF_INET, value))
        except (OSError, ValueError):
            pass
    return value


def v4_only(keys: list[Any]) -> list[int]:
    return [k if type(k) is int else -1 for k in keys]


def net_text(net: int, length: int) -> str:
    """An IPv4 network's key as its text, as stored (`a.b.c.0/n`)."""
    return f"{inet_ntoa((net << (32 - length)).to_bytes(4))}/{length}"


def trie_key(trie: pytricia.PyTricia, value: str) -> str | None:
    try:
        return trie.get_key(value)
    except ValueError:
        return None


def hash_keys(values: Sequence[str]) -> list[bytes | None]:
    try:
        return list(map(bytes.fromhex, values))
    except ValueError:  # a value that is not hex among them: it can match nothing
        return [hex_or_none(v) for v in values]


def hex_or_none(value: str) -> bytes | None:
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None
