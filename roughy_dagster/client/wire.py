"""One GET of the listing on the wire: straight to httpx's connection pool, with httpx's own settings.

A page of the listing is small and a sync asks for a thousand of them, so the per-request work above the
socket counts: `httpx.Client` builds and merges URLs, runs hooks and a cookie jar, and wraps every
response in streams and decoders, which costs about as much CPU as everything else a page needs. `Wire`
sends through the same connection pool the client would use (its proxy, TLS, limits and timeouts), with
the client's headers, and reads the body whole. With a custom transport it simply calls the transport.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import httpcore
import httpx

ACCEPT_ENCODING = "gzip, deflate"
"""The encodings `Wire` can undo; sent instead of httpx's default, which can include brotli and zstd."""


class WireError(Exception):
    """The request did not get a whole answer; `timed_out` tells a timeout from other transport failures."""

    def __init__(self, description: str, *, timed_out: bool) -> None:
        super().__init__(description)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Reply:
    """A whole HTTP answer: status, headers (lowercase names) and the decoded body."""

    status: int
    headers: dict[str, str]
    body: bytes


class Wire:
    """GETs for one `httpx.Client`, through the pool its transport for `url` holds."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self._timeout = {"timeout": http.timeout.as_dict()}
        self._transport = http._transport_for_url(httpx.URL(url))
        pool = getattr(self._transport, "_pool", None)
        self._pool = pool if isinstance(self._transport, httpx.HTTPTransport) else None
        # The headers httpx itself would send (Host included), computed once.
        self._http = http
        self._raw_headers = http.build_request("GET", url).headers.raw

    def get(self, url: str) -> Reply:
        """GET `url` (on the client's host) and read the whole answer, or raise `WireError`."""
        if self._pool is None:
            return self._get_through_transport(url)
        request = httpcore.Request("GET", url, headers=self._raw_headers, extensions=self._timeout)
        try:
            response = self._pool.handle_request(request)
            try:
                body = response.read()
            finally:
                response.close()
        except httpcore.TimeoutException as error:
            raise WireError(type(error).__name__, timed_out=True) from None
        except (
            httpcore.NetworkError,
            httpcore.ProtocolError,
            httpcore.ProxyError,
            httpcore.UnsupportedProtocol,
        ) as error:
            raise WireError(f"{type(error).__name__}: {error}", timed_out=False) from None
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in response.headers
        }
        return Reply(response.status, headers, _decoded(body, headers.get("content-encoding")))

    def _get_through_transport(self, url: str) -> Reply:
        request = httpx.Request("GET", url, headers=self._http.headers, extensions=self._timeout)
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TimeoutException as error:
            raise WireError(type(error).__name__, timed_out=True) from None
        except httpx.TransportError as error:
            raise WireError(f"{type(error).__name__}: {error}", timed_out=False) from None
        except httpx.DecodingError as error:
            raise WireError(f"undecodable body ({error})", timed_out=False) from None
        return Reply(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content
        )


def _decoded(body: bytes, encoding: str | None) -> bytes:
    """Undo a `Content-Encoding` of gzip or deflate; a body that does not decode is a `WireError`."""
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding == "gzip":
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if encoding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate, as some servers send
    except zlib.error as error:
        raise WireError(
            f"the {encoding} body does not decode ({error}; truncated?)", timed_out=False
        ) from None
    raise WireError(f"unsupported Content-Encoding {encoding!r}", timed_out=False)
