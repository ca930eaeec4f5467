"""Names an experiment gives the estate, checked offline against the plan: the Auto
Scaling groups and buckets of chaostoolkit-aws activities, the Deployments and
namespaces of chaostoolkit-kubernetes ones, each checked by its kind of target
(``aidrill.kinds``). A name the plan does not know (a typo, or
another team's group) is refused before anything runs, with the closest name the plan
has. Whether the resources exist is asked live, by the dry run and the run."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aidrill._arguments import Arguments
from aidrill.kinds import target_kind
from aidrill.plan import Plan

if TYPE_CHECKING:
    from chaoslib.types import Experiment


def estate_name_problems(experiment: Experiment, plan: Plan, target: str) -> list[str]:
    """One sentence per name the experiment uses that the plan does not, as the kind
    of target checks them."""
    check = target_kind(target).estate_names
    return check(list(_activities(experiment)), plan) if check is not None else []


def _activities(experiment: Experiment) -> Iterator[tuple[str, str, Arguments]]:
    """(where, module, arguments after the configuration's values) of each activity."""
    from chaoslib import substitute
    from chaoslib.configuration import load_configuration

    given = experiment.get("configuration")
    configuration = load_configuration(dict(given) if isinstance(given, dict) else {})
    hypothesis = experiment.get("steady-state-hypothesis")
    probes = hypothesis.get("probes") if isinstance(hypothesis, dict) else None
    for section, items in (
        ("steady-state-hypothesis", probes),
        ("method", experiment.get("method")),
        ("rollbacks", experiment.get("rollbacks")),
    ):
        for index, activity in enumerate(items if isinstance(items, list) else []):
            if not isinstance(activity, dict):
                continue
            provider = activity.get("provider")
            if not isinstance(provider, dict) or provider.get("type") != "python":
                continue
            arguments = provider.get("arguments")
            if not isinstance(arguments, dict):
                continue
            resolved = substitute(dict(arguments), configuration, {})
            where = f"{section}[{index}] {activity.get('name')}"
            yield where, str(provider.get("module", "")), Arguments(resolved, where)


def unknown_name(kind: str, name: str, known: list[str], where: str) -> str:
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]!r}?)" if near else f" (the plan has: {', '.join(known)})"
    return f"{where}: {kind} {name!r} is not one the plan names{hint}"
