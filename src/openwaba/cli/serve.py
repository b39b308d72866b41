"""`openwaba serve`: run the gateway. Its dependencies (the `[server]` extra) load
only here, so every other command starts fast and works on a `[cli]` install."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from openwaba.cli import output
from openwaba.domain.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

    from openwaba.config import Settings
    from openwaba.gateway import Gateway

_PR_SET_PDEATHSIG = 1  # prctl(2)
SERVER_HINT = "openwaba serve needs the gateway: pip install 'openwaba[server]'"


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (env OPENWABA_HOST, default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (env OPENWABA_PORT, default 8080).")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where data is stored (env OPENWABA_DATA_DIR, default ./openwaba-data).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="postgresql://… to share one database between nodes (env OPENWABA_DATABASE_URL)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="OPENWABA_WORKERS",
            help="Processes sharing the port and the database (env OPENWABA_WORKERS, default 1).",
        ),
    ] = 1,
) -> None:
    """Run the gateway (SQLite in the data directory, or PostgreSQL; sandbox connector)."""
    try:
        import uvicorn

        from openwaba.gateway import Gateway
        from openwaba.http.app import create_app
    except ImportError as exc:
        output.usage_error(f"cannot load the gateway ({exc})", SERVER_HINT)
    from openwaba.config import Settings

    try:
        settings = Settings.from_env().with_overrides(
            host=host, port=port, data_dir=data_dir, database_url=database_url
        )
    except ConfigError as exc:
        output.usage_error(str(exc))
    _log_like(settings)
    if workers > 1:
        _serve_workers(settings, workers)
        return
    gateway = Gateway(settings)
    application = create_app(settings, gateway, on_ready=lambda: print_summary(gateway))
    config = _uvicorn_config(application, settings)

    class _Server(uvicorn.Server):
        """uvicorn waits for open responses before the lifespan shutdown: the console's
        event streams are ended first, or a SIGTERM would wait on them for ever."""

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            gateway.changes.close()
            await super().shutdown(sockets)

    server = _Server(config)
    try:
        server.run()
    except ConfigError as exc:
        output.usage_error(str(exc))
    if not server.started:
        raise typer.Exit(1)


def _serve_workers(settings: Settings, workers: int) -> None:
    """N processes on one listening socket, sharing the database. This process
    prepares the database once (schema, seed, stale leases), holds the data
    directory's lock for as long as the workers run, and restarts a worker that dies
    (uvicorn's supervisor). Each worker runs a whole gateway: HTTP, hand-over and
    dispatcher; the database's leases keep any two from taking the same work."""
    from uvicorn.supervisors import Multiprocess

    from openwaba.gateway import Gateway
    from openwaba.locks import hold_exclusively

    if settings.clock == "manual":
        output.usage_error(
            "OPENWABA_CLOCK=manual needs one process: each worker would keep its own clock", "use --workers 1"
        )
    lock = None
    if settings.database_url is None:
        settings.database_path.parent.mkdir(parents=True, exist_ok=True)
        lock = hold_exclusively(settings.database_path.with_suffix(".lock"))
        if lock is None:
            output.usage_error(f"{settings.data_dir} is in use by another openwaba process")
    gateway = Gateway(settings, worker=True)
    try:
        asyncio.run(gateway.prepare())
    except (ConfigError, StorageError) as exc:
        output.usage_error(str(exc))
    # The workers are started afresh (spawned): they read their settings from the
    # environment, which must say what the options said.
    os.environ.update(_environment(settings))
    config = _uvicorn_config("openwaba.cli.serve:worker_app", settings, workers=workers)
    sock = config.bind_socket()
    print_summary(gateway)
    output.out().print(f"  workers        : {workers} processes", highlight=False)
    Multiprocess(config, sockets=[sock]).run()
    if lock is not None:
        os.close(lock)


def worker_app() -> Starlette:
    """The application of one worker process (`--workers N`); uvicorn calls it in the worker."""
    from openwaba.config import Settings
    from openwaba.gateway import Gateway
    from openwaba.http.app import create_app

    _stop_with_supervisor()
    settings = Settings.from_env()
    _log_like(settings)
    return create_app(settings, Gateway(settings, worker=True))


def _stop_with_supervisor() -> None:
    """A worker is killed when its supervisor dies, however it dies, instead of
    serving on alone (Linux's parent-death signal; elsewhere this does nothing).
    A kill loses nothing: what was answered 200 is committed."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # it died before the signal was asked for
        os.kill(os.getpid(), signal.SIGKILL)


def _environment(settings: Settings) -> dict[str, str]:
    env = {
        "OPENWABA_HOST": settings.host,
        "OPENWABA_PORT": str(settings.port),
        "OPENWABA_DATA_DIR": str(settings.data_dir),
    }
    if settings.database_url is not None:
        env["OPENWABA_DATABASE_URL"] = settings.database_url
    return env


def _uvicorn_config(app: object, settings: Settings, workers: int = 1) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
        app,  # type: ignore[arg-type]  # an ASGI application or, for workers, its factory's import string
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
        workers=workers,
        factory=workers > 1,
        # A worker cannot end the console's event streams before uvicorn waits for
        # open responses (one process can, see serve()): they are cut after this long.
        timeout_graceful_shutdown=5 if workers > 1 else None,
    )


def _log_like(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def migrate(
    database_url: Annotated[
        str | None,
        typer.Option(help="postgresql://… (env OPENWABA_DATABASE_URL); SQLite in the data directory if unset."),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="The SQLite data directory (env OPENWABA_DATA_DIR).")] = None,
) -> None:
    """Bring the database schema up to date (`serve` does it too; run it first when several nodes start together)."""
    import asyncio

    from openwaba.config import Settings

    try:
        settings = Settings.from_env().with_overrides(database_url=database_url, data_dir=data_dir)
    except ConfigError as exc:
        output.usage_error(str(exc))
    try:
        applied, where = asyncio.run(_migrate(settings))
    except ImportError as exc:
        output.usage_error(f"cannot load the storage ({exc})", "PostgreSQL needs: pip install 'openwaba[postgres]'")
    except (ConfigError, StorageError) as exc:
        output.usage_error(str(exc))
    if applied:
        output.out().print(f"{where}: applied migrations {', '.join(map(str, applied))}", highlight=False)
    else:
        output.out().print(f"{where}: the schema is up to date", highlight=False)


async def _migrate(settings: Settings) -> tuple[list[int], str]:
    if settings.database_url is not None:
        from openwaba.storage import postgres

        try:
            return await postgres.migrate(settings.database_url), postgres.redacted(settings.database_url)
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot migrate {postgres.redacted(settings.database_url)}: {exc}") from None
    from openwaba.storage.sqlite import SQLiteStorage

    storage = SQLiteStorage(settings.database_path)
    await storage.open()
    applied = await storage.migrated()
    await storage.close()
    return applied, str(settings.database_path)


def print_summary(gateway: Gateway) -> None:
    """On first start: the demo number, its key, the simulated users, and commands to try."""
    seed = gateway.seed
    if seed is None:
        return
    s = gateway.settings
    base = f"http://{s.host}:{s.port}"
    key = seed.api_key
    out = output.out()
    out.print(f"[bold green]openwaba[/bold green] listening on {base}  (data: {gateway.describe_storage()})")
    where = "number on Meta" if seed.channel.connector == "meta" else "sandbox number"
    out.print(f"  {where:<15}: +{seed.channel.phone_number}  (phone_number_id {seed.channel.phone_number_id})")
    if seed.channel.connector == "meta":
        out.print(
            f"  Meta webhook   : {base}/meta/webhook  (callback URL of the Meta app; verify token "
            "OPENWABA_META_VERIFY_TOKEN)"
        )
    if key:
        out.print(f"  D360-API-KEY   : {key}")
    else:
        out.print("  D360-API-KEY   : the key printed on first start (or set OPENWABA_SANDBOX_API_KEY)")
        key = "<your-api-key>"
    out.print("  simulated users: " + ", ".join(f"{u.wa_id} ({u.name})" for u in seed.users), soft_wrap=True)
    if not seed.users:
        return
    user = seed.users[0].wa_id
    message = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": user,
        "type": "text",
        "text": {"preview_url": False, "body": "Hello from openwaba"},
    }
    out.print("\nSend a message:", highlight=False)
    out.print(
        f"  curl -sS -X POST {base}/messages -H 'D360-API-KEY: {key}' -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(message, separators=(',', ':')))}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    out.print("Receive its webhooks (set your URL):", highlight=False)
    out.print(
        f"  curl -sS -X POST {base}/v1/configs/webhook -H 'D360-API-KEY: {key}' -H 'Content-Type: application/json' "
        '-d \'{"url":"http://127.0.0.1:9000/webhook"}\'',
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    out.print(
        f"Reply as a user:\n  openwaba sandbox say --url {base} --from {user} --api-key {key} 'hello'",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
