"""One region's S3 API: moto's server in its own OS process, on an ephemeral port.

Run as ``python -m aidrill.lab.s3server``; prints ``READY <port>`` once listening and
exits by itself when its parent (the lab) goes away, so a crashed lab leaves nothing.

moto keeps every model object it ever made (each object version, and the copies a
listing makes) in a class-level list for its dashboard, so a server that stores a
snapshot every few seconds grows by gigabytes even when old versions are deleted. The
lab needs no dashboard: those lists are made to keep nothing, and a deleted version is
freed like any other object.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import moto.s3.models  # noqa: F401  (defines the S3 model classes before they are untracked)
from moto.core.model_instances import model_data
from moto.server import ThreadedMotoServer


class _Untracked(list):  # type: ignore[type-arg]
    """A list that keeps nothing appended to it."""

    def append(self, item: object) -> None:
        pass


def stop_tracking_instances() -> None:
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked = _Untracked()  # type: ignore[attr-defined]


def main() -> None:
    stop_tracking_instances()
    parent = os.getppid()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer("127.0.0.1", port=0, verbose=False)
    server.start()
    print(f"READY {server.get_host_and_port()[1]}", flush=True)
    sys.stdout.close()
    while os.getppid() == parent:
        time.sleep(0.5)
    server.stop()


if __name__ == "__main__":
    main()
