"""The scenarios of sandbox numbers: set per number and per simulated user, kept
in storage (a restart keeps them), with one seeded random generator per number."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from pathlib import Path
from typing import Any

import msgspec

from openwaba.domain.accounts import Channel
from openwaba.domain.errors import ConfigError, RequestError
from openwaba.domain.scenarios import Failure, Scenario, draw_failure, parse_scenario
from openwaba.domain.scripts import Progress, ScriptStep, advance
from openwaba.domain.user_actions import UserAction
from openwaba.storage.base import Storage

_NUMBER = ""  # the layer key of the number's own scenario; users are keyed by wa_id


class Scenarios:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._layers: dict[int, dict[str, Scenario]] = {}
        self._rngs: dict[int, random.Random] = {}
        self._progress: dict[int, dict[str, Progress]] = {}
        # Read-modify-write of layers and progress, one at a time: saves then commit
        # in the order the changes were made (a `next` count must not go back up).
        self._writing = asyncio.Lock()

    def forget(self) -> None:
        """Drop cached layers and script progress (changed by another process).
        Random generators stay: each process draws from its own."""
        self._layers.clear()
        self._progress.clear()

    async def get(self, channel: Channel, wa_id: str | None = None) -> Scenario:
        """The layer as set (the number's, or one user's), not merged."""
        return (await self._of(channel)).get(wa_id or _NUMBER, Scenario())

    async def set(self, channel: Channel, wa_id: str | None, document: Any) -> Scenario:
        """Replace a layer; a seed restarts the number's random choices."""
        scenario = parse_scenario(document)
        if wa_id and scenario.seed is not None:
            raise RequestError(100, "'seed' is set for the whole number: PUT /sandbox/scenario")
        async with self._writing:
            layers = await self._of(channel)
            old = layers.get(wa_id or _NUMBER, Scenario())
            layers[wa_id or _NUMBER] = scenario
            if scenario.seed is not None:
                self._rngs[channel.id] = random.Random(scenario.seed)
            await self._save(channel, layers)
            if old.script != scenario.script:
                await self._restart_script(channel, wa_id)
        return scenario

    async def clear(self, channel: Channel, wa_id: str | None = None) -> None:
        async with self._writing:
            layers = await self._of(channel)
            old = layers.pop(wa_id or _NUMBER, Scenario())
            await self._save(channel, layers)
            if old.script is not None:
                await self._restart_script(channel, wa_id)

    async def script_progress(self, channel: Channel, wa_id: str) -> dict[str, Any]:
        """How far the user got through their script: steps done and the messages that did not match."""
        steps = (await self.effective(channel, wa_id)).script or ()
        return (await self._progress_of(channel)).get(wa_id, Progress()).view(len(steps))

    async def script_turn(
        self, channel: Channel, wa_id: str, steps: tuple[ScriptStep, ...], wamid: str, type_name: str, text: str
    ) -> tuple[UserAction | None, bool]:
        """The user reads a business message: their answer by the script `steps` (the user's effective
        script), and whether a step consumed the message."""
        if not steps:
            return None, False
        async with self._writing:
            progress = await self._progress_of(channel)
            progress[wa_id], action, matched = advance(steps, progress.get(wa_id, Progress()), wamid, type_name, text)
            await self._save_progress(channel, progress)
        return action, matched

    async def effective(self, channel: Channel, wa_id: str) -> Scenario:
        """The user's settings over the number's."""
        layers = await self._of(channel)
        return layers.get(wa_id, Scenario()).over(layers.get(_NUMBER, Scenario()))

    def rng(self, channel: Channel) -> random.Random:
        rng = self._rngs.get(channel.id)
        if rng is None:
            seed = self._layers.get(channel.id, {}).get(_NUMBER, Scenario()).seed
            rng = self._rngs[channel.id] = random.Random(seed)
        return rng

    async def failure(self, channel: Channel, wa_id: str, *, synchronous: bool) -> Failure | None:
        """The injected failure this message gets, if any (a `next` count is used up)."""
        if await self._failure_of(channel, wa_id, synchronous) is None:
            return None  # the common case decides without waiting for the lock
        async with self._writing:
            layers = await self._of(channel)
            found = await self._failure_of(channel, wa_id, synchronous)
            if found is None:
                return None
            owner, failure = found
            hit, left = draw_failure(failure, self.rng(channel))
            if left != failure:
                layers[owner] = dataclasses.replace(layers[owner], failure=left)
                await self._save(channel, layers)
        return failure if hit else None

    async def _failure_of(self, channel: Channel, wa_id: str, synchronous: bool) -> tuple[str, Failure] | None:
        """Whose failure setting applies to the user's message (theirs, else the number's)."""
        layers = await self._of(channel)
        owner = wa_id if layers.get(wa_id, Scenario()).failure is not None else _NUMBER
        failure = layers.get(owner, Scenario()).failure
        if failure is None or failure.synchronous != synchronous:
            return None
        return owner, failure

    async def load_file(self, channel: Channel, path: Path) -> None:
        """Apply a scenario file: `{"scenario": {...}, "users": {"<wa_id>": {...}}}`."""
        try:
            document = msgspec.json.decode(path.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            raise ConfigError(f"OPENWABA_SANDBOX_SCENARIO: cannot read {path}: {exc}") from None
        if not isinstance(document, dict) or not set(document) <= {"scenario", "users"}:
            raise ConfigError('OPENWABA_SANDBOX_SCENARIO: expected {"scenario": {...}, "users": {"<wa_id>": {...}}}')
        try:
            if "scenario" in document:
                await self.set(channel, None, document["scenario"])
            for wa_id, layer in (document.get("users") or {}).items():
                await self.set(channel, str(wa_id), layer)
        except RequestError as exc:
            raise ConfigError(f"OPENWABA_SANDBOX_SCENARIO: {exc.details}") from None

    async def _of(self, channel: Channel) -> dict[str, Scenario]:
        layers = self._layers.get(channel.id)
        if layers is None:
            raw = await self._storage.get_value(_key(channel))
            stored: dict[str, Any] = msgspec.json.decode(raw) if raw else {}
            layers = self._layers[channel.id] = {k: parse_scenario(v) for k, v in stored.items()}
        return layers

    async def script_failed(self, channel: Channel, wa_id: str, wamid: str, details: str) -> None:
        """The scripted answer to `wamid` could not be given; the test reads why in the progress."""
        async with self._writing:
            progress = await self._progress_of(channel)
            done = progress.get(wa_id, Progress())
            failure = {"step": done.done - 1, "got": {"id": wamid}, "error": details}
            progress[wa_id] = dataclasses.replace(done, mismatches=(*done.mismatches, failure))
            await self._save_progress(channel, progress)

    async def _progress_of(self, channel: Channel) -> dict[str, Progress]:
        progress = self._progress.get(channel.id)
        if progress is None:
            raw = await self._storage.get_value(_script_key(channel))
            stored: dict[str, Any] = msgspec.json.decode(raw) if raw else {}
            progress = self._progress[channel.id] = {k: Progress.from_view(v) for k, v in stored.items()}
        return progress

    async def _restart_script(self, channel: Channel, wa_id: str | None) -> None:
        """A new (or cleared) script starts from its first step: for one user, or for all of the number's."""
        progress = await self._progress_of(channel)
        if wa_id:
            progress.pop(wa_id, None)
        else:
            progress.clear()
        await self._save_progress(channel, progress)

    async def _save_progress(self, channel: Channel, progress: dict[str, Progress]) -> None:
        document = {k: {"done": p.done, "mismatches": list(p.mismatches)} for k, p in progress.items()}
        await self._storage.set_value(_script_key(channel), msgspec.json.encode(document).decode())

    async def _save(self, channel: Channel, layers: dict[str, Scenario]) -> None:
        document = {k: v.view() for k, v in layers.items() if v.view()}
        await self._storage.set_value(_key(channel), msgspec.json.encode(document).decode())


def _key(channel: Channel) -> str:
    return f"scenario.{channel.id}"


def _script_key(channel: Channel) -> str:
    return f"script.{channel.id}"
