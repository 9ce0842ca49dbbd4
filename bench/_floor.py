"""The floor every benchmark measures against: a bare httpx loop paging one listing, storing nothing."""

from __future__ import annotations

from collections.abc import Callable

import httpx


def page_through(
    base_url: str, project: str, api_key: str, on_page: Callable[[dict], object] | None = None
) -> tuple[int, int]:
    """Page the whole listing of `project` 100 at a time, as simply as httpx allows; (requests, rows)."""
    requests = rows = offset = 0
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}) as http:
        while True:
            parameters = {"project_id": project, "limit": 100, "offset": offset}
            page = http.get("/v1/assets", params=parameters).json()
            requests += 1
            rows += len(page["items"])
            offset += len(page["items"])
            if on_page is not None:
                on_page(page)
            if not page["items"] or offset >= page["total"]:
                return requests, rows
