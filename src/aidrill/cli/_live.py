"""The live view of a running drill: phase, time since the fault, requests/s, error
ratio, p95, quality and each component's state, read from the run's own evidence
files as they grow (events.jsonl, timeline.jsonl, components.jsonl).

On a terminal it is a rich panel refreshed twice a second; otherwise (or with
``--no-live``) one plain line per phase change and a status line every few seconds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from aidrill.measure import Bucket, HealthRule, health_rule_for, is_healthy
from aidrill.plan import Plan

_POLL = 0.5
_PLAIN_EVERY = 5.0
_PHASES = {
    "starting": "starting",
    "steady-state-before": "steady state",
    "method": "injecting",
    "steady-state-after": "observing",
    "rollbacks": "rollback",
    "finishing": "finishing",
}


class _Tail:
    """New complete lines of a growing JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""

    def read(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("r", encoding="utf-8", errors="replace") as handle:
                handle.seek(self.offset)
                text = handle.read(1_000_000)
                self.offset = handle.tell()
        except OSError:
            return []
        text, self.partial = self.partial + text, ""
        lines = text.split("\n")
        self.partial = lines.pop()  # an unfinished last line waits for the next read
        records = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


@dataclass
class _Component:
    state: str = "healthy"
    recovered_after: float | None = None


@dataclass
class LiveState:
    """What the evidence says so far; fed record by record (tested on its own).

    It tells live from stale: a series whose last record arrived more than two bucket
    widths ago is shown as "no load answers for N s" (or "no samples for N s"), never
    with the last numbers it had. ``components``: the tiers the plan names (None: any).
    """

    rule: HealthRule
    phase: str = "starting"
    fault_at: float | None = None
    last: Bucket | None = None
    components: dict[str, _Component] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    named: frozenset[str] | None = None
    width: float = 1.0
    arrived: dict[str, tuple[float, float]] = field(default_factory=dict)  # (read at, of)

    def event(self, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind == "phase":
            self._phase(_PHASES.get(str(record.get("phase")), str(record.get("phase"))))
        elif kind == "fault_injected" and self.fault_at is None:
            self.fault_at = float(record.get("time", time.time()))
            self._phase("observing")
        elif kind in ("rollbacks_started",):
            self._phase("rollback")

    def bucket(self, record: dict[str, Any]) -> None:
        if record.get("series", "inference") != "inference":
            return
        try:
            bucket = Bucket.from_record(record)
        except (KeyError, TypeError, ValueError):
            return  # a malformed line is the evidence reader's concern, not the view's
        self.last = bucket
        self.width = bucket.width
        self.arrived["inference"] = (time.time(), bucket.end)
        self._judge("inference", is_healthy(bucket, self.rule), bucket.end)

    def sample(self, record: dict[str, Any]) -> None:
        name = record.get("component")
        if not isinstance(name, str) or name == "replication-lag":
            return
        if self.named is not None and name not in self.named:
            return  # a tier the plan does not have is not shown
        when = float(record.get("time", 0.0))
        self.arrived[name] = (time.time(), when)
        self._judge(name, bool(record.get("ok")), when)

    def stale(self, series: str, now: float) -> float | None:
        """Seconds since ``series`` last had evidence, once nothing new has arrived for
        two bucket widths; None while it is live."""
        seen = self.arrived.get(series)
        if seen is None or now - seen[0] <= 2 * self.width:
            return None
        return max(0.0, now - seen[1])

    def _phase(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self.changes.append(f"phase: {phase}")

    def _judge(self, name: str, healthy: bool, when: float) -> None:
        component = self.components.setdefault(name, _Component())
        after_fault = self.fault_at is not None and when >= self.fault_at
        if not healthy and after_fault and component.state != "impacted":
            component.state = "impacted"
            self.changes.append(f"{name}: impacted")
        elif healthy and component.state == "impacted" and self.fault_at is not None:
            component.state = "recovered"
            component.recovered_after = when - self.fault_at
            self.changes.append(f"{name}: recovered at +{component.recovered_after:.1f}s")

    # -- what is shown ----------------------------------------------------------------
    def since_fault(self, now: float) -> str:
        return "—" if self.fault_at is None else f"+{now - self.fault_at:.0f}s"

    def traffic(self, now: float | None = None) -> dict[str, str]:
        bucket = self.last
        if bucket is None or not bucket.requests:
            return {"requests/s": "—", "errors": "—", "p95": "—", "quality": "—"}
        quiet = self.stale("inference", time.time() if now is None else now)
        if quiet is not None:
            return {"load": f"no load answers for {quiet:.0f} s"}
        quality = bucket.quality
        return {
            "requests/s": f"{bucket.requests / bucket.width:.0f}",
            "errors": f"{bucket.failures / bucket.requests:.1%}",
            "p95": "—" if bucket.p95 is None else f"{bucket.p95 * 1000:.0f} ms",
            "quality": "—" if quality is None else f"{quality:.2f}",
        }

    def component_states(self, now: float | None = None) -> dict[str, str]:
        moment = time.time() if now is None else now
        shown = {}
        for name, component in sorted(self.components.items()):
            quiet = self.stale(name, moment)
            if quiet is not None:
                what = "load answers" if name == "inference" else "samples"
                shown[name] = f"no {what} for {quiet:.0f} s"
            elif component.state == "recovered" and component.recovered_after is not None:
                shown[name] = f"recovered at +{component.recovered_after:.1f}s"
            else:
                shown[name] = component.state
        return shown

    def line(self, now: float) -> str:
        """One plain status line: the traffic, and the components that are not simply
        healthy (impacted, or recovered and when)."""
        traffic = ", ".join(v if k == "load" else f"{k} {v}" for k, v in self.traffic(now).items())
        states = ", ".join(
            f"{k} {v}" for k, v in self.component_states(now).items() if v != "healthy"
        )
        if not states and self.last is not None and not is_healthy(self.last, self.rule):
            states = "inference outside its SLO"
        return f"{self.phase} {self.since_fault(now)}: {traffic}; {states or 'all healthy'}"


class LiveView:
    """Follow the run that appears under ``reports_dir/runs`` while the block runs."""

    def __init__(
        self, console: Console, reports_dir: Path, plan: Plan, label: str, live: bool
    ) -> None:
        self.console, self.label = console, label
        self.runs = reports_dir / "runs"
        self.state = LiveState(
            health_rule_for(plan), named=frozenset(c.tier for c in plan.components)
        )
        self.live = live and console.is_terminal
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="aidrill-live", daemon=True)
        self._started = time.time()
        self._known = set(self.runs.iterdir()) if self.runs.is_dir() else set()
        self._tails: list[tuple[_Tail, Any]] = []
        self._display: Live | None = None

    def __enter__(self) -> LiveView:
        if self.live:
            self._display = Live(
                get_renderable=self.render, console=self.console, refresh_per_second=2,
                transient=True,
            )  # fmt: skip
            self._display.start()
        else:
            self.console.print(f"{self.label}: running…")
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        if self._display is not None:
            self._display.stop()

    def _follow(self) -> None:
        printed = 0.0
        while not self._stop.wait(_POLL):
            if not self._tails and not self._attach():
                continue
            for tail, feed in self._tails:
                for record in tail.read():
                    feed(record)
            if self.live:
                self.state.changes.clear()
                continue
            for change in self.state.changes:
                self.console.print(f"    {change}")
            self.state.changes.clear()
            now = time.time()
            if now - printed >= _PLAIN_EVERY and self.state.last is not None:
                self.console.print(f"    {self.state.line(now)}")
                printed = now

    def _attach(self) -> bool:
        if not self.runs.is_dir():
            return False
        fresh = [p for p in self.runs.iterdir() if p.is_dir() and p not in self._known]
        if not fresh:
            return False
        run_dir = max(fresh, key=lambda p: p.stat().st_mtime)
        self._tails = [
            (_Tail(run_dir / "events.jsonl"), self.state.event),
            (_Tail(run_dir / "timeline.jsonl"), self.state.bucket),
            (_Tail(run_dir / "components.jsonl"), self.state.sample),
        ]
        return True

    def render(self) -> RenderableType:
        now = time.time()
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("phase", self.state.phase)
        table.add_row("since the fault", self.state.since_fault(now))
        for key, value in self.state.traffic(now).items():
            table.add_row(key, f"[yellow]{value}[/]" if key == "load" else value)
        for name, state in self.state.component_states(now).items():
            colour = {"impacted": "red", "healthy": "green"}.get(state, "cyan")
            colour = "yellow" if state.startswith("no ") else colour
            table.add_row(name, f"[{colour}]{state}[/]")
        elapsed = now - self._started
        return Panel(table, title=f"{self.label} — {elapsed:.0f}s", title_align="left")
