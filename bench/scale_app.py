"""The function scenario (i) runs in ``ferryman worker`` processes: N no-op steps, each
execution appended to ``BENCH_SCALE_LEDGER`` so the bench can count extra executions."""

from __future__ import annotations

import os

import ferryman

fm = ferryman.Ferryman(app_id="bench-scale")
_LEDGER = os.environ.get("BENCH_SCALE_LEDGER", os.devnull)
_fd = os.open(_LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _mark(run_id: str, step: int) -> None:
    os.write(_fd, f"{run_id} {step}\n".encode())  # one write with O_APPEND: atomic per line


@fm.function(id="seq", trigger=ferryman.on_event("bench/scale"))
async def seq(ctx: ferryman.Context) -> int:
    n = int(ctx.event.data["steps"])
    for i in range(n):
        await ctx.step.run(f"s{i}", _mark, ctx.run_id, i)
    return n
