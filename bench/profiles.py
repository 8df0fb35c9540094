"""Summarize py-spy's collapsed stacks (``--format raw``): where the samples went.

``python -m bench.profiles FILE`` prints the functions with the most samples, by self time
(the frame on top) and inclusive (anywhere on the stack), as shares of the thread samples.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")
_SITE = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def _name(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = _SITE.sub("", m["file"])
    path = re.sub(r".*/(sdk|worker)/src/", "", path)
    path = re.sub(r".*/main/", "", path)
    return f"{m['fn']} ({path})"


def summarize(raw: str, top: int = 30, focus: str = "Handle._run") -> str:
    """Shares of the samples whose stack holds ``focus`` (default: event-loop callbacks,
    which leaves out start-up imports and the idle loop)."""
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = everything = 0
    for line in raw.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        frames, count = m[1].split(";"), int(m[2])
        everything += count
        if (focus and not any(focus in f for f in frames)) or any(
            "importlib._bootstrap" in f for f in frames
        ):
            continue
        total += count
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else ""
        threads[thread[:60]] += count
        named = [_name(f) for f in frames if not f.startswith(("thread", "process"))]
        if named:
            self_c[named[-1]] += count
        for name in set(named):
            incl[name] += count
    if not total:
        return "no samples\n"
    out = [
        f"{total} of {everything} samples (py-spy, 200 Hz, idle excluded) are event-loop work "
        f"(stacks holding {focus!r}, imports left out); the shares below are of those {total}",
        "",
        "by thread:",
    ]
    out += [f"  {c / total:6.1%}  {t}" for t, c in threads.most_common(8)]
    out += ["", f"top {top} by self time:"]
    out += [f"  {c / total:6.1%}  {n}" for n, c in self_c.most_common(top)]
    out += ["", f"top {top} inclusive:"]
    out += [f"  {c / total:6.1%}  {n}" for n, c in incl.most_common(top)]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(summarize(Path(sys.argv[1]).read_text(), int(sys.argv[2]) if len(sys.argv) > 2 else 30))
