"""A deadline for a request's headers, which uvicorn does not have: a client sending its headers a
byte at a time (slowloris) would otherwise hold a connection for ever.

:class:`HeaderDeadline` is the asyncio protocol handed to uvicorn as ``Config(http=...)`` (a public
setting that takes any protocol class). It wraps uvicorn's own HTTP/1.1 protocol by composition and
uses only public interfaces: asyncio's protocol and transport methods, uvicorn's protocol
constructor, and h11 (the parser uvicorn's protocol is built on) to tell where requests begin.

The rule: a connection that has answered every request it sent must send the next request's
complete headers within ``header_timeout_s``, counted from when it opened or from its last response;
otherwise it is closed. Idle keep-alive connections are uvicorn's ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = 10.0


class _RequestCounter:
    """Counts the requests whose headers have arrived on a connection, with a parser of its own (h11)
    that answers each one with an empty response at once, so pipelined requests are counted as they
    come, whatever the server is still doing with the earlier ones."""

    def __init__(self) -> None:
        self.parser: Optional[h11.Connection] = h11.Connection(h11.SERVER)
        self.requests = 0

    def feed(self, data: bytes) -> None:
        if self.parser is None:  # a request the counter cannot follow: the real protocol answers it
            return
        try:
            self.parser.receive_data(data)
            while (event := self.parser.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                if isinstance(event, h11.Request):
                    self.requests += 1
                elif isinstance(event, h11.EndOfMessage):
                    self.parser.send(h11.Response(status_code=204, headers=[]))
                    self.parser.send(h11.EndOfMessage())
                    self.parser.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    self.parser = None
                    return
        except h11.ProtocolError:  # malformed or closing: the real protocol answers and closes
            self.parser = None


class _CountingTransport:
    """The connection's transport, counting the responses the server starts (a write beginning with
    an HTTP status line that is not 1xx); every other attribute is the transport's own."""

    def __init__(self, transport: asyncio.Transport, on_response: Any) -> None:
        self._transport, self._on_response = transport, on_response

    def write(self, data: bytes) -> None:
        if data[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 ") and data[9:10] != b"1":
            self._on_response()
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeaderDeadline(asyncio.Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose next request's headers do not arrive
    within :attr:`header_timeout_s` of its opening or of its last response."""

    header_timeout_s = HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.http = H11Protocol(*args, **kwargs)
        self.counter = _RequestCounter()
        self.responses = 0
        self.transport: Optional[asyncio.Transport] = None
        self.deadline: Optional[asyncio.TimerHandle] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.http.connection_made(_CountingTransport(transport, self._response_started))  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self.counter.requests
        self.counter.feed(data)
        if self.counter.requests > before and self.deadline is not None:  # the awaited headers came
            self.deadline.cancel()
            self.deadline = None
        self.http.data_received(data)

    def eof_received(self) -> Optional[bool]:
        return self.http.eof_received()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.http.connection_lost(exc)

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()

    def _response_started(self) -> None:
        self.responses += 1
        if self.responses >= self.counter.requests:  # nothing else asked: the next headers are due
            self._arm()

    def _arm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        requests_then = self.counter.requests
        self.deadline = asyncio.get_running_loop().call_later(self.header_timeout_s, self._close_if_idle,
                                                              requests_then)

    def _close_if_idle(self, requests_then: int) -> None:
        self.deadline = None
        if self.counter.requests == requests_then and self.transport is not None and not self.transport.is_closing():
            self.transport.close()
