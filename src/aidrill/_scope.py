"""How a fault action declares its blast radius, so it can be checked before injection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

F = TypeVar("F", bound=Callable[..., Any])
ScopeKind = Literal[
    "gpu-nodes",
    "region",
    "gpu-capacity",
    "feature-store",
    "replication",
    "vector-index",
    "model-artifacts",
    "model-registry",
    "storage",
    "network",
    "recovery",
    "setup",
]
SCOPE_KINDS: frozenset[str] = frozenset(get_args(ScopeKind))
_ATTRIBUTE = "__aidrill_fault_scope__"


@dataclass(frozen=True)
class FaultScope:
    """What one fault action touches.

    ``kind`` says what it takes away inside the region named by its ``region``
    argument; ``removes_serving`` is true when it takes serving capacity away (node
    kills, region failure) rather than only what could be added later (GPU quota).
    A ``recovery`` action (restore a snapshot, recover an artifact) takes nothing away:
    it is an operator's recovery step placed in the method, so it can be timed. A
    ``setup`` action changes how the system behaves before the fault (switches on a
    safeguard the drill tests) and takes nothing away either; its rollback undoes it.
    """

    kind: ScopeKind
    removes_serving: bool


def fault_scope(kind: ScopeKind, removes_serving: bool = True) -> Callable[[F], F]:
    """Decorator declaring a fault action's scope."""

    def declare(function: F) -> F:
        setattr(function, _ATTRIBUTE, FaultScope(kind, removes_serving))
        return function

    return declare


def recovery_action(function: F) -> F:
    """Decorator for a method action that recovers rather than injects."""
    setattr(function, _ATTRIBUTE, FaultScope("recovery", removes_serving=False))
    return function


def setup_action(function: F) -> F:
    """Decorator for a method action that configures the system before its fault."""
    setattr(function, _ATTRIBUTE, FaultScope("setup", removes_serving=False))
    return function


NOT_FAULTS = ("recovery", "setup")  # method actions that take nothing away


def scope_of(function: Callable[..., Any]) -> FaultScope | None:
    scope = getattr(function, _ATTRIBUTE, None)
    return scope if isinstance(scope, FaultScope) else None
