"""Which kube context a chaostoolkit-kubernetes action will use, read as the driver
reads it, before anything runs (no client loaded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from aidrill._json import Provider

if TYPE_CHECKING:
    from chaoslib.types import Experiment


KUBERNETES_MODULES = ("chaosk8s", "aidrill.targets.kubernetes.actions")
_KUBECONFIG_LIMIT = 1 << 20


def driver_context(experiment: Experiment, provider: Provider) -> str | None:
    """The kube context a chaostoolkit-kubernetes action will use, as it picks one: a
    ``KUBERNETES_CONTEXT`` in the secrets it references, else the environment's, else
    the kubeconfig's current context."""
    if not str(provider.get("module", "")).startswith(KUBERNETES_MODULES):
        return None
    secrets = experiment.get("secrets") or {}
    keys = provider.get("secrets")
    for key in keys if isinstance(keys, list) else []:
        entry = secrets.get(key) if isinstance(secrets, dict) and isinstance(key, str) else None
        value = entry.get("KUBERNETES_CONTEXT") if isinstance(entry, dict) else None
        if isinstance(value, dict) and value.get("type") == "env":
            value = os.environ.get(str(value.get("key")))
        if isinstance(value, str) and value:
            return value
    return os.environ.get("KUBERNETES_CONTEXT") or kubeconfig_current_context()


def kubeconfig_current_context() -> str | None:
    """``current-context`` of the kubeconfig the official client reads (the first file
    of ``KUBECONFIG``, else ``~/.kube/config``); None when there is none."""
    paths = os.environ.get("KUBECONFIG", "").split(os.pathsep)
    path = Path(paths[0]).expanduser() if paths[0] else Path.home() / ".kube" / "config"
    try:
        if not path.is_file() or path.stat().st_size > _KUBECONFIG_LIMIT:
            return None
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    current = document.get("current-context") if isinstance(document, dict) else None
    return str(current) if current else None
