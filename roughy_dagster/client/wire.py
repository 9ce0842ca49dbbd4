"""One GET of the listing on the wire, through `httpx.Client.send` (httpx's public API).

httpx sends the request with the client's transport, proxy, TLS and limits, and decodes the body by its
`Content-Encoding` (whatever httpx can decode: gzip, deflate, and brotli/zstd when installed). What comes
back is the status, the headers and the decoded body, or, when the body does not decode, the reason:
a 429 or 503 is then still handled by its status and `Retry-After`. The only per-request work done here
is building one `httpx.Request` from headers merged once, so paging a thousand pages stays cheap.
"""

from __future__ import annotations

import http.cookiejar
import urllib.request
from dataclasses import dataclass

import httpx

CONTENT_CODING_ALIASES = {"x-gzip": "gzip"}
"""Content codings RFC 9110 (8.4.1.3) tells a recipient to treat as equivalent to a standard one."""


class WireError(Exception):
    """The request got no whole answer.

    `timed_out` tells a timeout from other transport failures; `sendable` is False when the request could
    not even be sent (httpx refused it as malformed), which sending again cannot fix. `request_id` is the
    answer's `x-request-id` when its headers arrived before the failure. The description never holds a
    header value.
    """

    def __init__(
        self, description: str, *, timed_out: bool, sendable: bool = True, request_id: str | None = None
    ) -> None:
        super().__init__(description)
        self.timed_out = timed_out
        self.sendable = sendable
        self.request_id = request_id


@dataclass(frozen=True)
class Reply:
    """A whole HTTP answer: status, headers, and the body decoded by httpx.

    `body` is None when httpx could not decode it by its `Content-Encoding`; `undecodable` then says why.
    """

    status: int
    headers: httpx.Headers
    body: bytes | None
    undecodable: str | None = None

    @property
    def request_id(self) -> str | None:
        """The server's `x-request-id`, when it sent one."""
        request_id: str | None = self.headers.get("x-request-id")
        return request_id

    @property
    def content_coding(self) -> str:
        """The `Content-Encoding` as sent, or `identity`."""
        coding: str = self.headers.get("content-encoding") or "identity"
        return coding


class NoCookies(http.cookiejar.CookieJar):
    """The client's cookie jar: keeps nothing. The API authenticates by header, so a cookie a server or
    proxy sets is neither needed nor kept, and not parsing `Set-Cookie` saves a tenth of a page's CPU."""

    def extract_cookies(self, response: object, request: urllib.request.Request) -> None:
        """Keep no cookie from `response`."""


def alias_content_codings(response: httpx.Response) -> None:
    """httpx response hook: rename `x-gzip` to `gzip` (RFC 9110) so httpx decodes it like gzip."""
    value = response.headers.get("content-encoding")
    if value is None:
        return
    codings = [coding.strip() for coding in value.split(",")]
    renamed = [CONTENT_CODING_ALIASES.get(coding.lower(), coding) for coding in codings]
    if renamed != codings:
        response.headers["content-encoding"] = ", ".join(renamed)


class Wire:
    """GETs on one `httpx.Client`, with the client's headers merged once (`url` names the host)."""

    def __init__(self, http: httpx.Client, url: str) -> None:
        self._http = http
        self._headers = http.build_request("GET", url).headers

    def get(self, url: str, timeout: dict[str, float | None]) -> Reply:
        """GET `url` with httpx `timeout`s (seconds by phase), reading the whole answer; or `WireError`."""
        request = httpx.Request("GET", url, headers=self._headers, extensions={"timeout": timeout})
        try:
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException as error:
            raise WireError(type(error).__name__, timed_out=True) from None
        except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as error:
            # httpx's text can quote a header value (an API key): name the kind of failure only.
            raise WireError(
                f"the request could not be sent ({type(error).__name__}; header values are not shown)",
                timed_out=False,
                sendable=False,
            ) from None
        except httpx.TransportError as error:
            raise WireError(f"{type(error).__name__}: {error}", timed_out=False) from None
        try:
            body: bytes | None = response.read()
            undecodable = None
        except httpx.DecodingError as error:
            body, undecodable = None, str(error)
        except httpx.TimeoutException as error:
            raise WireError(
                f"{type(error).__name__} while reading the body",
                timed_out=True,
                request_id=response.headers.get("x-request-id"),
            ) from None
        except httpx.TransportError as error:
            raise WireError(
                f"{type(error).__name__} while reading the body: {error}",
                timed_out=False,
                request_id=response.headers.get("x-request-id"),
            ) from None
        finally:
            response.close()
        return Reply(response.status_code, response.headers, body, undecodable)
