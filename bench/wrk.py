"""The load generator: wrk (its own process, C and LuaJIT), driven by Lua scripts generated here.

Bodies are Infobip-shaped templates built in Python (tiktok_channel/sandbox/payloads.py) and cut at their
placeholders; the Lua side only concatenates pieces with per-request values (a counter makes every
messageId unique). `done()` prints one JSON line with the counts and the latency percentiles.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PLACEHOLDER = re.compile(r"@@(\w+)@@")
PERCENTILES = [1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97.5, 99, 99.5, 99.9, 100]

DONE_TEMPLATE = """
done = function(summary, latency, requests)
  local pct = {}
  for _, p in ipairs({@PERCENTILES@}) do
    pct[#pct + 1] = string.format('"%%s": %%d', tostring(p), latency:percentile(p))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "percentiles_us": {%%s}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(pct, ", ")))
end
"""
DONE = DONE_TEMPLATE.replace("@PERCENTILES@", ", ".join(str(p) for p in PERCENTILES)).replace("%%", "%")


def lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def template_function(name: str, template: str) -> str:
    """A Lua function `name(v)` returning `template` with each @@key@@ replaced by v.key (a string)."""
    parts = []
    for index, piece in enumerate(PLACEHOLDER.split(template)):
        parts.append(lua_string(piece) if index % 2 == 0 else f"v.{piece}")
    return f"local function {name}(v)\n  return table.concat({{{', '.join(parts)}}})\nend\n"


@dataclass
class Script:
    """A wrk Lua script: `body` is Lua code defining `request = function() ... end` (and helpers)."""

    method: str
    headers: dict[str, str]
    body: str
    delay_ms: float = 0.0

    def render(self) -> str:
        lines = [f'wrk.method = "{self.method}"']
        lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in self.headers.items()]
        lines.append("local counter = 0")
        lines.append(self.body)
        if self.delay_ms:
            lines.append(f"delay = function() return {self.delay_ms:.3f} end")
        lines.append(DONE)
        return "\n".join(lines)


@dataclass
class Result:
    requests: int
    seconds: float
    errors: dict[str, int]
    percentiles_ms: dict[float, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        return self.percentiles_ms[p]

    @property
    def failed(self) -> int:
        return sum(self.errors.values())


def available() -> bool:
    return shutil.which("wrk") is not None


def run(url: str, script: Script, *, seconds: float, connections: int, timeout_s: int = 5) -> Result:
    """One bounded wrk run (one thread, `connections` connections)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script.render())
        path = Path(handle.name)
    try:
        completed = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout_s}s",
             "-s", str(path), url],
            capture_output=True, text=True, timeout=seconds + timeout_s + 30,
        )  # fmt: skip
    finally:
        path.unlink(missing_ok=True)
    line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {completed.stdout}\n{completed.stderr}")
    data = json.loads(line.removeprefix("BENCHJSON "))
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        percentiles_ms={float(k): v / 1000 for k, v in data["percentiles_us"].items()},
    )


def paced(result_rate: float, fraction: float, connections: int) -> float:
    """The per-request delay (ms) for `connections` paced connections to offer `fraction` × the saturated rate."""
    target = max(1.0, result_rate * fraction)
    return 1000.0 * connections / target
