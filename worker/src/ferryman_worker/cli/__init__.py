"""The ``ferryman`` command line.

::

    ferryman dev -m examples.bookings        everything locally, console on :8288
    ferryman worker -m myapp.functions       a worker (FERRYMAN_DATABASE_URL, FERRYMAN_NATS_URL)
    ferryman gateway                         the event and REST API
    ferryman send booking.created --data '{"bookingId": "b1"}'
    ferryman runs list --status FAILED
    ferryman runs show RUN_ID [--json]
    ferryman runs cancel RUN_ID | --function FN [--status S --after T --before T]
    ferryman runs replay RUN_ID [--from-step STEP] | --function FN --status FAILED
    ferryman migrate                         apply database migrations
    ferryman manifests -m myapp.functions    DurableFunctions for kubectl apply -f -
    ferryman keys create NAME | list | revoke NAME           event keys
    ferryman tokens create NAME --role read|operate | list | revoke NAME   API tokens
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

EPILOG = """environment:
  FERRYMAN_DATABASE_URL   PostgreSQL URL (worker, gateway, migrate)
  FERRYMAN_NATS_URL       NATS URL (worker, gateway)
  FERRYMAN_EVENT_KEY      an event key for POST /e/{key} (gateway; `send` uses it)
  FERRYMAN_API_TOKEN      an operate API token (gateway accepts it; runs commands send it)
  FERRYMAN_AUTH           false: no keys or tokens needed (the default of `ferryman dev`)
  FERRYMAN_API_URL        gateway URL for send/runs (default http://127.0.0.1:8288)

examples:
  ferryman dev -m examples.bookings
  ferryman send booking.created --data '{"bookingId": "b-1"}'
  ferryman runs list --function bookings-process-booking --status FAILED
"""


def _api(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("FERRYMAN_API_URL") or "http://127.0.0.1:8288").rstrip(
        "/"
    )


def _http(method: str, url: str, **kwargs: Any) -> Any:
    import httpx

    token = os.environ.get("FERRYMAN_API_TOKEN")
    if token and "/e/" not in url:
        kwargs["headers"] = {"Authorization": f"Bearer {token}"}
    try:
        response = httpx.request(method, url, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        raise SystemExit(
            f"error: cannot reach the gateway at {url} ({exc}).\n"
            "Is `ferryman dev` (or a gateway) running? Set --url or FERRYMAN_API_URL."
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {"error": f"HTTP {response.status_code}: {response.text[:200]}"}
    if response.status_code >= 400:
        hint = ""
        if response.status_code == 401 and "/e/" not in url:
            hint = "\nSet FERRYMAN_API_TOKEN to a token from `ferryman tokens create`."
        raise SystemExit(f"error: {body.get('error', body)}{hint}")
    return body


def cmd_send(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        raise SystemExit(
            f"error: --data is not JSON ({exc}); e.g. --data '{{\"id\": 1}}'"
        ) from None
    if not isinstance(data, dict):
        raise SystemExit("error: --data must be a JSON object, e.g. --data '{\"id\": 1}'")
    event: dict[str, Any] = {"name": args.name, "data": data}
    if args.id:
        event["id"] = args.id
    key = args.event_key or os.environ.get("FERRYMAN_EVENT_KEY") or "dev"
    body = _http("POST", f"{_api(args)}/e/{key}", json=event)
    print(body["ids"][0])
    return 0


def _table(runs: list[dict[str, Any]]) -> None:
    print(f"{'RUN ID':<28}{'FUNCTION':<40}{'STATUS':<11}{'CREATED':<26}")
    for r in runs:
        print(f"{r['run_id']:<28}{r['function_id']:<40}{r['status']:<11}{r['created_at'][:25]:<26}")


def cmd_runs_list(args: argparse.Namespace) -> int:
    params = {
        k: v
        for k, v in {
            "function_id": args.function,
            "status": args.status,
            "limit": args.limit,
        }.items()
        if v
    }
    body = _http("GET", f"{_api(args)}/v1/runs", params=params)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        _table(body["data"])
        if body.get("cursor"):
            print(f"... more: --limit {args.limit * 2} shows more")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    run = _http("GET", f"{_api(args)}/v1/runs/{args.run_id}")["data"]
    if args.json:
        print(json.dumps(run, indent=2))
        return 0
    print(f"run       {run['run_id']}\nfunction  {run['function_id']}\nstatus    {run['status']}")
    if run.get("reason"):
        print(f"reason    {run['reason']}")
    elif run.get("held_reason"):  # it ran, but flow control held it first
        print(f"waited    {run['held_reason']}")
    print(
        f"event     {run['event_id']}\nstarted   {run['started_at']}\nended     {run['ended_at']}"
    )
    if run["error"]:
        print(f"error     {run['error'].get('name')}: {run['error'].get('message')}")
    if run["output"] is not None:
        print(f"output    {json.dumps(run['output'])[:200]}")
    print("steps:")
    for s in run["steps"]:
        extra = f" until {s['wake_at']}" if s["wake_at"] and s["status"] == "SLEEPING" else ""
        err = f"  ({s['error']['message'][:80]})" if s["error"] else ""
        print(f"  {s['id']:<30}{s['op']:<11}{s['status']:<10} attempts={s['attempts']}{extra}{err}")
    return 0


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "function_id": args.function,
            "status": args.status,
            "after": args.after,
            "before": args.before,
        }.items()
        if v
    }


def _bulk(args: argparse.Namespace, action: str, one: dict[str, Any] | None = None) -> int:
    """``runs cancel|replay``: one RUN_ID, or every run the filters select."""
    if args.run_id:
        run = _http("POST", f"{_api(args)}/v1/runs/{args.run_id}/{action}", json=one or {})
        data = run["data"]
        print(
            f"{data['run_id']} {data['status']}"
            + (f" (replay of {args.run_id})" if action == "replay" else "")
        )
        return 0
    if not args.function:
        raise SystemExit(
            f"error: give a RUN_ID, or --function (with optional --status, "
            f"--after, --before) to {action} many"
        )
    body = _http("POST", f"{_api(args)}/v1/runs/{action}", json=_filters(args))["data"]
    print(f"{action}: {body['count']} run(s)")
    for run_id in body["run_ids"]:
        print(run_id)
    return 0


def cmd_runs_cancel(args: argparse.Namespace) -> int:
    return _bulk(args, "cancel")


def cmd_runs_replay(args: argparse.Namespace) -> int:
    return _bulk(args, "replay", {"from_step": args.from_step} if args.from_step else None)


def _settings(args: argparse.Namespace) -> Any:
    from ferryman_worker.common.settings import SettingsError, load_settings

    try:
        return load_settings(
            database_url=getattr(args, "database_url", None),
            nats_url=getattr(args, "nats_url", None),
            concurrency=getattr(args, "concurrency", None),
            port=getattr(args, "port", None),
            host=getattr(args, "host", None),
        )
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None


def cmd_worker(args: argparse.Namespace) -> int:
    from ferryman_worker.common.loading import ModuleError, load_module
    from ferryman_worker.common.settings import SettingsError
    from ferryman_worker.kube.drift import warn_on_drift
    from ferryman_worker.worker import Worker

    settings = _settings(args)
    try:
        module, apps = load_module(args.module)
        worker = Worker(apps, settings)
    except (ModuleError, SettingsError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None

    if settings.metrics_port:
        from prometheus_client import start_http_server

        from ferryman_worker.common.metrics import WORKER

        start_http_server(settings.metrics_port, settings.metrics_host, registry=WORKER)

    async def main() -> None:
        await warn_on_drift(apps, module)
        await worker.start(run_migrations=not args.no_migrate)
        if settings.ready_file:
            Path(settings.ready_file).write_text(str(os.getpid()))  # noqa: ASYNC240 - once
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        await done.wait()
        await worker.stop(grace=settings.shutdown_grace)

    asyncio.run(main())
    return 0


def cmd_gateway(args: argparse.Namespace) -> int:
    import uvicorn

    from ferryman_worker.common.settings import SettingsError
    from ferryman_worker.gateway import Gateway, create_app

    settings = _settings(args)
    try:
        app = create_app(Gateway(settings))
    except SettingsError as exc:
        raise SystemExit(f"error: {exc}") from None
    # proxy_headers off: the trusted-proxy check must see the real peer address, not an
    # X-Forwarded-For a client wrote.
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from ferryman_worker.storage.migrating import migrate

    settings = _settings(args)
    settings.require("database_url")
    applied = asyncio.run(migrate(settings.database_url))
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_manifests(args: argparse.Namespace) -> int:
    from ferryman_worker.common.loading import ModuleError, load_module
    from ferryman_worker.kube.manifests import manifests, render

    try:
        module, apps = load_module(args.module)
    except ModuleError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(render(manifests(apps, module, args.pool, args.image), args.module), end="")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from ferryman_worker.common.loading import ModuleError, load_apps
    from ferryman_worker.dev.server import run_dev

    try:
        load_apps(args.module)  # fail fast, before starting servers
    except ModuleError as exc:
        raise SystemExit(f"error: {exc}") from None
    from ferryman_worker.dev.lock import DataFolderBusy
    from ferryman_worker.dev.server import DevError

    try:
        return asyncio.run(run_dev(args.module, args.port, Path(args.data_dir), not args.no_reload))
    except KeyboardInterrupt:
        return 0
    except (DevError, DataFolderBusy) as exc:
        raise SystemExit(f"error: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferryman",
        description="Durable, event-driven functions for Kubernetes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks (for bug reports)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev",
        help="run everything locally: PostgreSQL, NATS, gateway, worker",
        description="Start PostgreSQL and NATS (data under --data-dir), the "
        "gateway on --port, and a worker for MODULE that reloads on change.",
    )
    dev.add_argument("-m", "--module", required=True, help="dotted module, e.g. examples.bookings")
    dev.add_argument("--port", type=int, default=8288, help="gateway port (default 8288)")
    dev.add_argument("--data-dir", default=".ferryman", help="where data lives (default .ferryman)")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on code changes")
    dev.set_defaults(func=cmd_dev)

    worker = sub.add_parser("worker", help="run a worker for a module's functions")
    worker.add_argument("-m", "--module", required=True, help="dotted module with a Ferryman app")
    worker.add_argument("--database-url", help="PostgreSQL URL (FERRYMAN_DATABASE_URL)")
    worker.add_argument("--nats-url", help="NATS URL (FERRYMAN_NATS_URL)")
    worker.add_argument("--concurrency", type=int, help="runs advanced at once (default 200)")
    worker.add_argument("--no-migrate", action="store_true", help="do not apply migrations")
    worker.set_defaults(func=cmd_worker)

    gateway = sub.add_parser("gateway", help="serve the event and REST API")
    gateway.add_argument("--database-url", help="PostgreSQL URL (FERRYMAN_DATABASE_URL)")
    gateway.add_argument("--nats-url", help="NATS URL (FERRYMAN_NATS_URL)")
    gateway.add_argument("--host", help="listen address (default 127.0.0.1)")
    gateway.add_argument("--port", type=int, help="port (default 8288)")
    gateway.set_defaults(func=cmd_gateway)

    man = sub.add_parser(
        "manifests",
        help="print the Kubernetes resources for a module's functions",
        description="Print a DurableFunction per function in MODULE (and a WorkerPool with "
        "--image), ready for `kubectl apply -f -`.",
    )
    man.add_argument("-m", "--module", required=True, help="dotted module with a Ferryman app")
    man.add_argument("--pool", help="WorkerPool name (default: the app id)")
    man.add_argument("--image", help="also print a WorkerPool running this image")
    man.set_defaults(func=cmd_manifests)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--database-url", help="PostgreSQL URL (FERRYMAN_DATABASE_URL)")
    migrate.set_defaults(func=cmd_migrate)

    send = sub.add_parser("send", help="send an event")
    send.add_argument("name", help="event name, e.g. booking.created")
    send.add_argument("--data", default="{}", help="JSON object (default {})")
    send.add_argument("--id", help="event id; a reused id starts no new run within 24 h")
    send.add_argument("--event-key", help="event key (FERRYMAN_EVENT_KEY, default 'dev')")
    send.add_argument("--url", help="gateway URL (FERRYMAN_API_URL)")
    send.set_defaults(func=cmd_send)

    runs = sub.add_parser("runs", help="list and inspect runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    ls = runs_sub.add_parser("list", help="newest runs first")
    ls.add_argument("--function", help="function id, e.g. bookings-process-booking")
    ls.add_argument(
        "--status",
        choices=["QUEUED", "RUNNING", "SLEEPING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"],
    )
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--url", help="gateway URL (FERRYMAN_API_URL)")
    ls.set_defaults(func=cmd_runs_list)
    show = runs_sub.add_parser("show", help="a run and its steps")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")
    show.add_argument("--url", help="gateway URL (FERRYMAN_API_URL)")
    show.set_defaults(func=cmd_runs_show)
    for action, func, what in (
        ("cancel", cmd_runs_cancel, "cancel a run, or many"),
        ("replay", cmd_runs_replay, "replay a failed or cancelled run"),
    ):
        cmd = runs_sub.add_parser(
            action,
            help=what,
            description=f"{what.capitalize()}: "
            "one RUN_ID, or every run matching --function and filters.",
        )
        cmd.add_argument("run_id", nargs="?", help="the run (omit to use filters)")
        if action == "replay":
            cmd.add_argument("--from-step", help="keep the steps before this one")
        cmd.add_argument("--function", help="every run of this function id")
        cmd.add_argument("--status", help="only runs with this status")
        cmd.add_argument("--after", help="created at or after (ISO 8601)")
        cmd.add_argument("--before", help="created before (ISO 8601)")
        cmd.add_argument("--url", help="gateway URL (FERRYMAN_API_URL)")
        cmd.set_defaults(func=func)
    from ferryman_worker.cli.credentials import add_commands as add_credential_commands

    add_credential_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere: `ferryman dev --debug -m app` too
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    from ferryman_worker.common import logs

    try:
        logs.configure(
            os.environ.get("FERRYMAN_LOG_FORMAT", "console"),
            level=logging.INFO
            if args.verbose or args.command in ("worker", "dev")
            else logging.WARNING,
        )
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    try:
        result: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A user's mistake (or an unreachable server) is one line; --debug shows the rest.
        if args.debug:
            raise
        print(
            f"error: {type(exc).__name__}: {exc}\n(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    return result
