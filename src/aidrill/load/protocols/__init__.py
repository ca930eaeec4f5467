"""The protocols the load, the steady-state probes and pre-flight speak to an inference
endpoint, one module each, chosen by the plan's ``protocol.kind``.

Adding a protocol is one new module here: a :class:`ModelProtocol` subclass named in its
module's ``PROTOCOLS``; nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

from aidrill.load.protocols._base import ModelProtocol, StreamFailed

if TYPE_CHECKING:
    from aidrill.plan import ProtocolSettings

__all__ = ["ModelProtocol", "StreamFailed", "protocol_for", "protocol_names"]


@cache
def _registry() -> dict[str, type[ModelProtocol]]:
    found: dict[str, type[ModelProtocol]] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        for protocol in getattr(loaded, "PROTOCOLS", ()):
            for name in protocol.names:
                found[name] = protocol
    return found


def protocol_names() -> list[str]:
    return sorted(_registry())


def protocol_for(settings: ProtocolSettings) -> ModelProtocol:
    """The protocol the settings name, configured by them."""
    try:
        protocol = _registry()[settings.kind]
    except KeyError:
        known = ", ".join(protocol_names())
        raise ValueError(f"unknown protocol {settings.kind!r} (known: {known})") from None
    return protocol(settings)
