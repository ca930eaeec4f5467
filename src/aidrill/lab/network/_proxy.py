"""The lab's fault proxy: an asyncio TCP proxy in front of storage endpoints and links.

Every storage endpoint (S3 per region, Redis per region) and the cross-region
replication link is reached through one :class:`FaultProxy`, so faults act on the
network path the way they would in production:

- ``latency``: each chunk is held that long before it is forwarded (``jitter``: ± that
  much, uniformly; ``loss``: with that probability a chunk also waits a TCP
  retransmission);
- ``bandwidth``: bytes per second per direction and connection;
- ``pause``: nothing is forwarded until resumed (a stalled link; data waits, buffered);
- ``blackhole``: bytes are read and dropped, new connections hang;
- ``reset``: open connections are closed and new ones are refused at once.

The upstream can be changed while the proxy runs (an endpoint that follows a
promotion); existing connections are then closed, as a DNS switch plus a failed
primary would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from aidrill._json import JsonObject
from aidrill.lab.network._faults import Impairment

_CHUNK = 64 * 1024


@dataclass
class ProxyFault:
    latency: float = 0.0
    bandwidth: float | None = None  # bytes per second
    mode: str = "pass"  # pass | pause | blackhole | reset
    jitter: float = 0.0
    loss: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "bandwidth": self.bandwidth,
            "mode": self.mode,
            "jitter": self.jitter,
            "loss": self.loss,
        }

    def hold(self, rng: random.Random) -> float:
        """How long one chunk waits before it is forwarded (its bandwidth is capped
        separately, slice by slice)."""
        return Impairment(self.latency, self.jitter, self.loss).delay(0, rng)


class FaultProxy:
    def __init__(self, hub: ProxyHub, name: str, upstream_port: int) -> None:
        self.hub = hub
        self.name = name
        self.upstream_port = upstream_port
        self.fault = ProxyFault()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._rng = random.Random()

    # -- called from any thread -------------------------------------------------------
    def set_fault(
        self,
        latency: float = 0.0,
        bandwidth: float | None = None,
        mode: str = "pass",
        jitter: float = 0.0,
        loss: float = 0.0,
    ) -> None:
        self.hub.call(self._set_fault(ProxyFault(latency, bandwidth, mode, jitter, loss)))

    def clear(self) -> None:
        self.set_fault()

    def retarget(self, upstream_port: int) -> None:
        self.hub.call(self._retarget(upstream_port))

    def snapshot(self) -> JsonObject:
        return {"port": self.port, "upstream": self.upstream_port, **self.fault.describe()}

    # -- on the hub's loop ------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._drop_connections()

    async def _set_fault(self, fault: ProxyFault) -> None:
        self.fault = fault
        if fault.mode in ("reset", "blackhole"):
            self._drop_connections()
        if fault.mode == "pause":
            self._resumed.clear()
        else:
            self._resumed.set()

    async def _retarget(self, upstream_port: int) -> None:
        if upstream_port != self.upstream_port:
            self.upstream_port = upstream_port
            self._drop_connections()

    def _drop_connections(self) -> None:
        for writer in list(self._connections):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._connections.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.fault.mode == "reset":
            writer.transport.abort()
            return
        if self.fault.mode == "blackhole":
            self._connections.add(writer)
            with contextlib.suppress(Exception):
                while await reader.read(_CHUNK):
                    pass
            self._connections.discard(writer)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._connections.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                self._connections.discard(end)
                with contextlib.suppress(Exception):
                    end.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self._resumed.wait()
                fault = self.fault
                if fault.mode == "blackhole":
                    continue
                if fault.latency or fault.jitter or fault.loss:
                    await asyncio.sleep(fault.hold(self._rng))
                if fault.bandwidth:
                    await self._send_capped(writer, data, fault.bandwidth)
                else:
                    writer.write(data)
                    await writer.drain()
        with contextlib.suppress(Exception):
            writer.write_eof()

    async def _send_capped(
        self, writer: asyncio.StreamWriter, data: bytes, bandwidth: float
    ) -> None:
        slice_size = max(1024, int(bandwidth / 20))
        for offset in range(0, len(data), slice_size):
            piece = data[offset : offset + slice_size]
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(len(piece) / bandwidth)


class ProxyHub:
    """Runs every proxy of the lab on one asyncio loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxies: dict[str, FaultProxy] = {}
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="proxy")
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def add(self, name: str, upstream_port: int) -> FaultProxy:
        proxy = FaultProxy(self, name, upstream_port)
        self.call(self._create(proxy))
        self.proxies[name] = proxy
        return proxy

    async def _create(self, proxy: FaultProxy) -> None:
        # Events must be created on the loop that will wait on them.
        proxy._resumed = asyncio.Event()
        proxy._resumed.set()
        await proxy.start()

    def clear_all(self) -> None:
        for proxy in self.proxies.values():
            proxy.clear()

    def snapshot(self) -> dict[str, JsonObject]:
        return {name: proxy.snapshot() for name, proxy in self.proxies.items()}

    def stop(self) -> None:
        for proxy in self.proxies.values():
            with contextlib.suppress(Exception):
                self.call(proxy.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()
