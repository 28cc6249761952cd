"""The library as the web page browses it: every pack as a card, filtered, sorted and paged.

Cards are built from ``Store.show`` and kept in memory; a pack's card is rebuilt only when
one of its state files changed (their inode, size and mtime, which every atomic write
changes), so a filter over thousands of packs costs a few thousand ``stat`` calls.
Whether a pack's files are present is checked on every query (blobs come and go without
a state change).
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Literal
from urllib.parse import quote

import attrs
from pydantic import BaseModel

from synapse_core.api.previews import PreviewFile, pack_previews
from synapse_core.errors import SynapseError
from synapse_core.kinds import AssetKind
from synapse_core.store import Store

SortKey = Literal["name", "-name", "size", "-size", "newest", "oldest", "base_model", "kind", "source"]
MAX_PAGE = 500


class LibraryItem(BaseModel):
    """One pack as a card of the library."""

    name: str
    kinds: list[AssetKind]
    base_model: str | None
    source: str
    creator: str | None
    tags: list[str]
    trigger_words: list[str]
    files: list[str]
    size: int
    resources: int
    installed: bool
    missing: int
    """Resources whose file is not in the store."""
    policy: str
    upstream: str
    update: str | None = None
    """The newer version the last update check found, if the pack is not on it yet."""
    added: str
    """When the pack was last resolved (import or update), ISO 8601."""
    preview: PreviewFile | None = None


class LibraryPage(BaseModel):
    """A page of matching packs; ``total`` counts every match."""

    total: int
    offset: int
    items: list[LibraryItem]


class Facet(BaseModel):
    """A filter value and how many packs have it."""

    value: str
    count: int


class LibraryFacets(BaseModel):
    """What the filters can choose from, over the whole library."""

    packs: int
    kinds: list[Facet]
    base_models: list[Facet]
    sources: list[Facet]
    tags: list[Facet]
    installed: int
    missing: int
    updates: int


@attrs.frozen
class LibraryQuery:
    """Filters (all must match), a sort and a page."""

    text: str = ""
    """Words that must each appear in the name, a file name, a trigger word, the creator or a tag."""
    kind: str | None = None
    base_model: str | None = None
    source: str | None = None
    tag: str | None = None
    installed: bool | None = None
    updates: bool = False
    sort: SortKey = "name"
    offset: int = 0
    limit: int = 100


@attrs.frozen
class _Card:
    key: tuple[tuple[int, int, int], ...]
    item: LibraryItem
    blobs: tuple[str, ...]
    haystack: str
    version_ids: frozenset[str]


class LibraryIndex:
    """The cards of one store, rebuilt per pack as its files change; safe across threads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cards: dict[str, _Card] = {}
        self._lock = threading.Lock()

    def query(self, query: LibraryQuery) -> LibraryPage:
        """The page of packs that match, in the asked order."""
        items = [item for item, card in self._current() if _matches(item, card, query)]
        items.sort(key=_sort_key(query.sort))
        if query.sort in ("-name", "-size", "newest"):
            items.reverse()
        page = items[query.offset : query.offset + min(query.limit, MAX_PAGE)]
        return LibraryPage(total=len(items), offset=query.offset, items=page)

    def facets(self) -> LibraryFacets:
        """Counts of every filter value."""
        items = [item for item, _ in self._current()]

        def facet(values: Iterable[str]) -> list[Facet]:
            counts = Counter(values)
            return [Facet(value=v, count=n) for v, n in sorted(counts.items(), key=lambda c: (-c[1], c[0].lower()))]

        return LibraryFacets(
            packs=len(items),
            kinds=facet(k.value for i in items for k in i.kinds),
            base_models=facet(i.base_model for i in items if i.base_model),
            sources=facet(i.source for i in items),
            tags=facet(t for i in items for t in set(i.tags)),
            installed=sum(i.installed for i in items),
            missing=sum(not i.installed for i in items),
            updates=sum(i.update is not None for i in items),
        )

    def _current(self) -> list[tuple[LibraryItem, _Card]]:
        """Every pack's card, rebuilt where its files changed, with presence checked now."""
        self.store.layout.require_initialised()
        names = self.store.files.pack_names()
        checks = self.store.update_checks().packs
        out = []
        with self._lock:
            for gone in set(self._cards) - set(names):
                del self._cards[gone]
            for name in names:
                card = self._card(name)
                if card is None:
                    continue
                present = sum(self.store.blobs.has(sha) for sha in card.blobs)
                item = card.item.model_copy(
                    update={"installed": present == len(card.blobs), "missing": len(card.blobs) - present}
                )
                check = checks.get(name)
                if check and check.status == "update" and check.latest_version_id is not None:
                    latest = check.latest_version_id
                    item.update = None if latest in card.version_ids else latest
                out.append((item, card))
        return out

    def _card(self, name: str) -> _Card | None:
        layout = self.store.layout
        key = tuple(
            _identity(path) for path in (layout.pack_file(name), layout.lock_file_of(name), layout.previews_index(name))
        )
        card = self._cards.get(name)
        if card is not None and card.key == key:
            return card
        try:
            details = self.store.show(name)
        except SynapseError:  # a broken pack is doctor's to report; the library shows the rest
            self._cards.pop(name, None)
            return None
        pack, lock = details.pack, details.lock
        locked = [lock.resources[r.id] for r in pack.resources if r.id in lock.resources]
        files = sorted({r.expose for r in pack.resources} | {r.file_name for r in locked})
        previews = pack_previews(layout, name, f"/api/packs/{quote(name, safe='')}/previews")
        item = LibraryItem(
            name=name,
            kinds=sorted({r.kind for r in pack.resources}),
            base_model=pack.base_model,
            source=pack.source.provider,
            creator=pack.creator,
            tags=pack.tags,
            trigger_words=pack.trigger_words,
            files=files,
            size=sum(r.size for r in locked),
            resources=len(pack.resources),
            installed=False,
            missing=0,
            policy=pack.policy,
            upstream=pack.upstream,
            added=lock.resolved_at.isoformat(),
            preview=next((p for p in previews if p.media == "image"), None),
        )
        words = [name, *files, *pack.trigger_words, pack.creator or "", *pack.tags]
        card = _Card(
            key=key,
            item=item,
            blobs=tuple(r.sha256 for r in locked),
            haystack="\n".join(words).lower(),
            version_ids=frozenset(r.version_id for r in locked if r.version_id is not None),
        )
        self._cards[name] = card
        return card


def _identity(path: os.PathLike[str]) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _matches(item: LibraryItem, card: _Card, q: LibraryQuery) -> bool:
    if q.kind and q.kind not in item.kinds:
        return False
    if q.base_model and item.base_model != q.base_model:
        return False
    if q.source and item.source != q.source:
        return False
    if q.tag and q.tag not in item.tags:
        return False
    if q.installed is not None and item.installed != q.installed:
        return False
    if q.updates and item.update is None:
        return False
    return all(word in card.haystack for word in q.text.lower().split())


def _sort_key(sort: SortKey) -> Callable[[LibraryItem], Any]:
    def name(i: LibraryItem) -> str:
        return i.name.lower()

    keys: dict[str, Callable[[LibraryItem], Any]] = {
        "name": name,
        "-name": name,
        "size": lambda i: (i.size, name(i)),
        "-size": lambda i: (i.size, name(i)),
        "newest": lambda i: (i.added, name(i)),
        "oldest": lambda i: (i.added, name(i)),
        "base_model": lambda i: ((i.base_model or "\uffff").lower(), name(i)),
        "kind": lambda i: ([k.value for k in i.kinds], name(i)),
        "source": lambda i: (i.source, name(i)),
    }
    return keys[sort]
