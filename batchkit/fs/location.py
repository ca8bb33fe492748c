"""One logical storage location reachable through several base URLs (law's ``base`` lists).

A site often exposes the same files through several doors -- two XRootD redirectors, or an
XRootD and a WebDAV endpoint. A :class:`Location` holds them in order of preference; every
function of :mod:`batchkit.fs` accepts it wherever it accepts a URL, and on a *transient*
failure (refused connection, timeout, 5xx) moves on to the next base before it backs off.
Permanent answers (no such file, permission denied) are believed at once: the bases are
meant to show the same files.

>>> store = Location(["root://eos1.example.org//eos/data", "davs://eos2.example.org:8443/eos/data"])
>>> target = store / "run42" / "hits.root"
>>> [str(u) for u in target.urls()]
['root://eos1.example.org//eos/data/run42/hits.root', 'davs://eos2.example.org:8443/eos/data/run42/hits.root']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Union

import attrs

from batchkit.errors import InvalidURL
from batchkit.fs.url import URL, parse_url


def _to_bases(value: Sequence[str | URL] | str | URL) -> tuple[URL, ...]:
    if isinstance(value, (str, URL)):
        value = [value]
    bases = tuple(parse_url(v) for v in value)
    if not bases:
        raise InvalidURL("a Location needs at least one base URL")
    return bases


@attrs.frozen
class Location:
    """Several base URLs for one place; ``/`` and :meth:`join` descend into it."""

    bases: tuple[URL, ...] = attrs.field(converter=_to_bases)

    def join(self, *parts: str) -> Location:
        return Location([base.join(*parts) for base in self.bases])

    def __truediv__(self, part: str) -> Location:
        return self.join(part)

    def urls(self) -> list[URL]:
        return list(self.bases)

    @property
    def name(self) -> str:
        return self.bases[0].name

    def __str__(self) -> str:
        return " | ".join(base.display() for base in self.bases)


#: What the public functions accept as a place: a path, a URL text, a parsed URL or a Location.
PathLike = Union[str, "os.PathLike[str]", URL, Location]


def candidates(value: PathLike) -> list[URL]:
    """The URLs to try, in order, for ``value``."""
    if isinstance(value, Location):
        return value.urls()
    return [parse_url(value)]
