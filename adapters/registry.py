"""Adapters by name, found through the `hub.adapters` entry points.

A package (ours or a third party's) offers an adapter by declaring

    [project.entry-points."hub.adapters"]
    my_shape = "my_package.module:MyAdapter"

and a provider of the tenancy file picks it with `adapter = "my_shape"`.
Nothing is cached or registered at import time, so there is no global state
for tests to reset. This module must never construct an adapter other than
through `create()`, nor import an adapter module by any other way than its
entry point.
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points

import aiohttp

from adapters.base import Adapter, AdapterConfigError, PartnerConfig

GROUP = "hub.adapters"


def names() -> list[str]:
    """The names of every installed adapter, sorted."""
    return sorted({point.name for point in entry_points(group=GROUP)})


def get(name: str) -> type[Adapter]:
    """The adapter class installed as `name`, or AdapterConfigError saying which exist."""
    found = {point.value: point for point in entry_points(group=GROUP) if point.name == name}
    if not found:
        known = ", ".join(names()) or "none"
        raise AdapterConfigError(f"unknown adapter {name!r} (installed: {known})")
    if len(found) > 1:
        raise AdapterConfigError(
            f"adapter {name!r} is installed more than once: {', '.join(sorted(found))}"
        )
    [point] = found.values()
    return _load(point)


def create(config: PartnerConfig, adapter_name: str, session: aiohttp.ClientSession) -> Adapter:
    """The provider's adapter, built; AdapterConfigError if its settings cannot be used."""
    return get(adapter_name)(config, session)


def _load(point: EntryPoint) -> type[Adapter]:
    try:
        loaded = point.load()
    except (ImportError, AttributeError) as exc:
        raise AdapterConfigError(
            f"adapter {point.name!r} cannot be loaded from {point.value}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Adapter)) or inspect.isabstract(loaded):
        raise AdapterConfigError(
            f"adapter {point.name!r} ({point.value}) is not a concrete Adapter class"
        )
    return loaded
