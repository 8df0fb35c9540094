"""One (system, scenario) pair in its own process; writes a :class:`bench.common.Result`.

Usage (the orchestrator calls it)::

    python -m bench.runner --system ferryman --scenario a --db-url ... --nats-url ... \
        --params '{"steps": 1000}' --timeout 180 --result /tmp/a.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import Result, ScenarioTimeout


async def run(args: argparse.Namespace) -> Result:
    params: dict[str, Any] = json.loads(args.params)
    result = Result(system=args.system, scenario=args.scenario, params=params)
    side: Any
    if args.system == "ferryman":
        from bench.ferryman_side import Side as FerrymanSide

        side = FerrymanSide(args.db_url, args.nats_url, params, args.scenario)
    else:
        from bench.dbos_side import Side as DbosSide

        side = DbosSide(args.db_url, params)
    started = time.monotonic()
    try:
        await side.start()
        result.settings = side.settings_used()
        scenario = getattr(side, f"scenario_{args.scenario}")
        await asyncio.wait_for(scenario(result, args.timeout), args.timeout + 60)
    except ScenarioTimeout as exc:
        result.status, result.message = "timeout", str(exc)
    except TimeoutError:
        result.status = "timeout"
        result.message = (
            f"{args.system} did not finish scenario {args.scenario} "
            f"within {args.timeout + 60:.0f} s"
        )
    except Exception as exc:
        result.status, result.message = "error", f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        result.seconds = time.monotonic() - started
        result.write(args.result)
        stopping = time.monotonic()
        try:
            await asyncio.wait_for(side.stop(), 5)
        except (TimeoutError, Exception) as exc:
            print(f"{args.system} did not stop cleanly: {exc!r}", file=sys.stderr)
        result.metrics["shutdown_s"] = round(time.monotonic() - stopping, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.runner")
    ap.add_argument("--system", choices=["ferryman", "dbos"], required=True)
    ap.add_argument("--scenario", choices=list("abcdefghi"), required=True)
    ap.add_argument("--db-url", required=True)
    ap.add_argument("--nats-url", default="")
    ap.add_argument("--params", default="{}")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--result", type=Path, required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    result = asyncio.run(run(args))
    result.write(args.result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
