"""Off-contract items inside a well-formed page: kept in the page's shape, never written, never proof.

The client reports an item whose values the contract refuses (`AssetPage.off_contract`) instead of
refusing its page. The rest of the page is as good as any: its other items are recorded. But the
refused item holds a place in the list, so the sync must neither lose it nor read its absence:

- Each refused item is put back at its place as a *placeholder*: an `AssetSummary` with what could be read
  (id, project, `created_at`) and every other field empty. The paging primitive then sees the page the
  server sent (its length, its overlap with the next page; a page of refused items is not an empty page
  that would end the list), and the engine counts the asset as seen in its list, so it is never proven
  deleted and never makes the state's count disagree.
- No row of an asset any page showed off-contract is written (`SyncEngine._quarantine`): its stored row,
  if any, stays exactly as it was; the store marks its project unverified, naming asset, field, value
  and request id.
- An item whose `id` cannot be read gets an id derived from its bytes (so the same item on two pages is
  one asset), and its page proves nothing about what is absent (`proves_order`): it could be any stored
  asset. An item whose `created_at` cannot be read borrows a neighbour's, which keeps the page in order
  and its proof sound (the span can only shrink); alone on its page, it makes the page prove nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..client import AssetPage, AssetState, AssetSummary
from ..client.models import OffContractItem

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def placeholder_id(item: OffContractItem) -> str:
    """The id the sync knows a refused item by: its own, or one derived from its bytes when unreadable."""
    if item.asset_id is not None:
        return item.asset_id
    return str(uuid.UUID(hex=item.digest))


def proves_order(page: AssetPage) -> bool:
    """Whether the page's span may prove absences (given placeholders): every refused item on it has a
    readable id, and a time of its own or one borrowed from a neighbour.

    An id derived from bytes could stand for any stored asset, which the span would then prove absent.
    A borrowed time keeps the span sound: the newer neighbour's (or, for the first item, an older one's)
    is never further out than the item's own, so the span can only shrink.
    """
    return all(
        item.asset_id is not None
        and (item.created_at is not None or page.items[item.index].created_at != _EPOCH)
        for item in page.off_contract
    )


def with_placeholders(page: AssetPage, state: AssetState, project_id: str | None) -> AssetPage:
    """`page` with a placeholder at the place of each off-contract item (module doc).

    A placeholder's state is the item's own when readable (else the list's: the request filtered by it),
    its project the item's own when readable (else the one the request filtered by, or None for an
    account-wide list: the store attributes it). Pure: safe in the paging threads.
    """
    items = list(page.items)
    refused = sorted(page.off_contract, key=lambda item: item.index)
    for item in refused:
        items.insert(item.index, _placeholder(item, state, project_id))
    timeless = {item.index for item in refused if item.created_at is None}
    for index in sorted(timeless):  # in order, so a run of unreadable times borrows the same one
        borrowed = _borrowed_time(items, index, timeless)
        items[index] = msgspec.structs.replace(items[index], created_at=borrowed)
    return msgspec.structs.replace(page, items=items)


def _placeholder(item: OffContractItem, state: AssetState, project_id: str | None) -> AssetSummary:
    """What can be placed of a refused item; every other field empty (the row is never written)."""
    values: dict[str, Any] = dict.fromkeys(AssetSummary.__struct_fields__)
    values.update(
        id=placeholder_id(item),
        project_id=item.project_id or project_id,  # None: unattributed (the store resolves it)
        state=item.state or state,
        created_at=item.created_at or _EPOCH,
    )
    return AssetSummary(**values)


def _borrowed_time(items: list[AssetSummary], index: int, timeless: set[int]) -> datetime:
    """The `created_at` of the newer neighbour (for the first item, of the first older one with a time of
    its own): the page stays newest first; `_EPOCH` when no item has a time."""
    if index > 0:
        return items[index - 1].created_at
    older = [item.created_at for position, item in enumerate(items) if position not in timeless]
    return older[0] if older else _EPOCH
