"""One region's S3 API: moto's server in its own OS process, on an ephemeral port.

Run as ``python -m aidrill.lab.data.s3server [--serialize]``; prints ``READY <port>`` once
listening and exits by itself when its parent (the lab) goes away, so a crashed lab
leaves nothing.

moto's backends are plain Python objects that its threaded server changes from one
thread per request, without locks. With ``--serialize`` one request at a time runs in
the backend (the AWS twin's control-plane server: EC2, Auto Scaling and FIS calls are
small, and the reconciler and a drill's chaostoolkit-aws calls change the same groups).
An exception inside moto reaches the client as a bare HTML 500 that botocore cannot
parse; its traceback is in the server's log. The buckets' servers stay concurrent: a
download slowed by a storage fault must not hold up the others.

moto keeps every model object it ever made (each object version, and the copies a
listing makes) in a class-level list for its dashboard, so a server that stores a
snapshot every few seconds grows by gigabytes even when old versions are deleted. The
lab needs no dashboard: those lists are made to keep nothing, and a deleted version is
freed like any other object.

moto answers every ListObjectVersions, whatever its prefix, by deep-copying every
version of every key in the bucket, bytes included (it marks the copies' ``is_latest``).
The lab's buckets hold a few hundred versions, some of several MiB (index snapshots),
and it lists versions often (expiring old snapshots, the observer's model listing): the
copies made the servers' CPU and memory grow with the bucket, and each listing slowed as
a demo went on. Here a version's copy for a listing shares its bytes (a view that never
closes them): what a listing reads is unchanged.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.model_instances import model_data
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.s3.models import FakeKey  # (also defines the S3 model classes before they are untracked)
from werkzeug.serving import make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Untracked(list):  # type: ignore[type-arg]
    """A list that keeps nothing appended to it."""

    def append(self, item: object) -> None:
        pass


class _ListedKey(FakeKey):
    """A listing's copy of a stored version: its own attributes (``is_latest``), the
    stored bytes shared. It never closes them: the version it copies still owns them."""

    # moto's model metaclass files each model class under the service its module names
    # (this module runs as __main__, which names none).
    __module__ = "moto.s3.listing"

    def dispose(self, garbage: bool = False) -> None:
        pass

    def __del__(self) -> None:
        pass


def _copy_for_listing(key: FakeKey, memo: dict[int, Any]) -> FakeKey:
    listed = object.__new__(_ListedKey)
    listed.__dict__.update(key.__dict__)
    return listed


def share_bytes_in_listings() -> None:
    """Deep copies of a stored version (moto makes them only to list versions) share
    its bytes instead of copying them."""
    FakeKey.__deepcopy__ = _copy_for_listing  # type: ignore[attr-defined]


def stop_tracking_instances() -> None:
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked = _Untracked()  # type: ignore[attr-defined]


def serialized(app: WsgiApp) -> WsgiApp:
    """``app`` run for one request at a time: the whole answer is made under a lock."""
    lock = threading.Lock()

    def locked(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with lock:
            return list(app(environ, start_response))

    return locked


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aidrill.lab.data.s3server")
    parser.add_argument("--serialize", action="store_true", help="one request at a time")
    args = parser.parse_args(argv)
    stop_tracking_instances()
    share_bytes_in_listings()
    parent = os.getppid()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    app: WsgiApp = DomainDispatcherApplication(create_backend_app)
    if args.serialize:
        app = serialized(app)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="moto").start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdout.close()
    while os.getppid() == parent:
        time.sleep(0.5)
    server.shutdown()


if __name__ == "__main__":
    main()
