"""Hosts as a browser sees them, and the addresses a script may never reach.

`canonical_host` turns the host part of a URL into the one form a browser would compare:
percent-decoded, mapped by UTS #46 (case, full-width forms, IDNA), and, when it ends in a
number, read by the WHATWG IPv4 parser, so `2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`
and `127.0.0.1.` are all the address 127.0.0.1 and never a name that merely looks different.

`refusal` says why an address is out of bounds for a script (loopback, private, link-local
and the cloud metadata address, ...), or None for an address on the public internet. IPv6
forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by the address they carry,
and everything outside global unicast is refused: an allowlist, so a range that the IANA
registry adds later is refused until someone looks at it.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from dataclasses import dataclass
from typing import Literal

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why) for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # 255.255.255.255, the broadcast address, among them
    )
)

_V6_GLOBAL = ipaddress.IPv6Network("2000::/3")
_V6_REFUSED: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why) for net, why in (
        ("2001::/23", "IETF protocol assignment"),  # Teredo, ORCHID, benchmarking among them
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing"),
    )
)
_V6_OUTSIDE_GLOBAL: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), why) for net, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def refusal(address: IPAddress) -> str | None:
    """Why a script may not connect to `address` (a short phrase), or None if it may."""
    if isinstance(address, ipaddress.IPv4Address):
        return next((why for net, why in _V4_REFUSED if address in net), None)
    embedded = _embedded_v4(address)
    if embedded is not None:
        inner = refusal(embedded)
        return None if inner is None else f"{inner}, embedded in IPv6"
    outside = next((why for net6, why in _V6_OUTSIDE_GLOBAL if address in net6), None)
    if outside is not None:
        return outside
    if address not in _V6_GLOBAL:
        return "reserved"
    return next((why for net6, why in _V6_REFUSED if address in net6), None)


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where a stack would route it there."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


class HostError(ValueError):
    """The host part of a URL is not a host a browser would accept (the message says why)."""


@dataclass(frozen=True)
class Host:
    """A canonical host: `text` is what origins compare and URLs show (IPv6 without
    brackets); `address` is set for an IP literal."""

    text: str
    kind: Literal["name", "ipv4", "ipv6"]
    address: IPAddress | None = None

    @property
    def in_url(self) -> str:
        return f"[{self.text}]" if self.kind == "ipv6" else self.text


# What may remain in a name once it is mapped: DNS labels (the underscore of service names
# too). Browsers let a few more ASCII symbols through; no resolver would find such a name.
_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*")
_MAX_NAME = 253


def canonical_host(text: str) -> Host:
    """The canonical form of a URL's host (without the port), or HostError."""
    if not text:
        raise HostError("the host is empty")
    if text.startswith("["):
        if not text.endswith("]"):
            raise HostError("the IPv6 address has no closing ']'")
        return _ipv6(text[1:-1])
    if "[" in text or "]" in text:
        raise HostError("the host holds '[' or ']' outside an IPv6 address")
    decoded = _percent_decoded(text)
    try:
        mapped = idna.uts46_remap(decoded, std3_rules=False, transitional=False)
    except (idna.IDNAError, UnicodeError) as exc:
        raise HostError("the host is not a valid internationalised name") from exc
    if _ends_in_number(mapped):
        return _ipv4(mapped)
    name = mapped[:-1] if mapped.endswith(".") else mapped
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=False).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise HostError("the host is not a valid internationalised name") from exc
    if len(name) > _MAX_NAME or not _NAME.fullmatch(name):
        raise HostError("the host is not a valid name")
    return Host(name, "name")


def _percent_decoded(text: str) -> str:
    if "%" not in text:
        return text
    if re.search(r"%(?![0-9A-Fa-f]{2})", text):
        raise HostError("the host holds a '%' that is not percent-encoding")
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError as exc:
        raise HostError("the host's percent-encoding is not UTF-8") from exc


def _ipv6(text: str) -> Host:
    if "%" in text:
        raise HostError("an IPv6 zone identifier is not allowed")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError as exc:
        raise HostError("the IPv6 address is not valid") from exc
    return Host(address.compressed, "ipv6", address)


def _ends_in_number(host: str) -> bool:
    """The WHATWG test for a host the IPv4 parser must read (a last label of digits or 0x...)."""
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    if last.isascii() and last.isdigit():
        return True
    return last[:2] in ("0x", "0X") and all(c in "0123456789abcdefABCDEF" for c in last[2:])


def _ipv4(host: str) -> Host:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise HostError("the IPv4 address has more than four parts")
    numbers = [_ipv4_number(part) for part in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise HostError("the IPv4 address is out of range")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    address = ipaddress.IPv4Address(value)
    return Host(str(address), "ipv4", address)


def _ipv4_number(part: str) -> int:
    base, digits = 10, part
    if part[:2] in ("0x", "0X"):
        base, digits = 16, part[2:]
    elif len(part) > 1 and part.startswith("0"):
        base, digits = 8, part[1:]
    if digits == "":
        if part == "":
            raise HostError("the IPv4 address has an empty part")
        return 0
    allowed = "0123456789abcdefABCDEF"[: 22 if base == 16 else base]
    if not all(c in allowed for c in digits):
        raise HostError("the IPv4 address has a part that is not a number")
    return int(digits, base)
