"""One region's S3 API: moto's server in its own OS process, on an ephemeral port.

Run as ``python -m aidrill.lab.s3server``; prints ``READY <port>`` once listening and
exits by itself when its parent (the lab) goes away, so a crashed lab leaves nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from moto.server import ThreadedMotoServer


def main() -> None:
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
