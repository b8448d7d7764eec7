"""Transports carry request bytes to a chip and response bytes back."""

from __future__ import annotations

from typing import Protocol

from trustprov.link.port import ChipPort


class Link(Protocol):
    def exchange(self, request: bytes) -> bytes: ...


class InProcessLink:
    """The chip model in this process: the same bytes a serial link would carry."""

    def __init__(self, port: ChipPort) -> None:
        self._port = port

    def exchange(self, request: bytes) -> bytes:
        return self._port.handle(bytes(request))
