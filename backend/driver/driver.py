"""The instance driver agent: fixed instances, patched into the engine's signal path.

An instance driver stands for a rack of outboard gear: the instances it hosts are declared
in its config (``instances``: id, model, params), announced at registration, and stay
put. The engine sends blocks through them (``insert`` frames, over the driver's direct
insert link, ``insert_server.py``, or relayed by the hub); the driver processes each block
with the same model code the engine would run for a dynamic instance, and sends it back
with the instance's report (e.g. gain reduction).

A block flagged ``reset`` starts a run: the instance's state is cleared and the task's
parameters applied, so a render through a driver is bit-identical to the same instance run
dynamically. Blocks are processed inline on the event loop: one block is well under a
millisecond, far below the health-check timeout, and inline is the lowest latency.
"""

from __future__ import annotations

import logging
from typing import Any

from backend.agents.session import AgentSession
from backend.audio.errors import AudioError
from backend.audio.instance import Model
from backend.audio.models import check_params, create_instance
from backend.driver.insert_server import InsertServer, parse_listen
from backend.loopback import is_loopback
from backend.protocol import Message, frames
from backend.protocol.tasks import (
    InsertEndpoint,
    InsertLink,
    InstanceParams,
    InstancesReport,
    TaskAccepted,
    TaskDrop,
    TaskDropped,
    TaskRefused,
    TaskSpecPush,
)

log = logging.getLogger(__name__)


class Driver:
    def __init__(self, session: AgentSession) -> None:
        self.session = session
        self.instances: dict[str, Model[Any]] = {}
        self.models: dict[str, str] = {}
        self.rate: dict[str, int] = {}
        #: task id -> {instance id -> the task's params for it}
        self.tasks: dict[str, dict[str, dict[str, Any]]] = {}
        session.handlers.update({
            "task.spec": self._on_spec, "task.drop": self._on_drop,
            "instance.params": self._on_params,
        })
        session.on_binary = self._on_binary
        self.inserts = InsertServer(self.reply)
        self.link: InsertLink | None = None

    async def open_link(self, config: dict[str, Any]) -> None:
        """Start the direct insert link (once: a new ``insert_listen`` needs a restart) and
        tell the hub where it is; every registration tells it again."""
        if self.link is None:
            try:
                listen = parse_listen(config.get("insert_listen"))
                if listen is None:
                    return
                advertise = config.get("insert_advertise")
                sealed = config.get("insert_seal") == "on" or not is_loopback(listen[0])
                self.link = await self.inserts.start(*listen, str(advertise) if advertise
                                                     else None, sealed=sealed)
            except (ValueError, OSError) as exc:
                log.error("no direct insert link (inserts go through the hub): %s", exc)
                return
        await self.session.send(InsertEndpoint(link=self.link))

    def configure(self, config: dict[str, Any]) -> None:
        """(Re)build the rack from the merged config; unchanged instances keep their state."""
        declared = config.get("instances", [])
        wanted: dict[str, str] = {}
        for entry in declared if isinstance(declared, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                wanted[entry["id"]] = str(entry.get("model"))
        for iid in list(self.instances):
            if wanted.get(iid) != self.models.get(iid):
                del self.instances[iid]
        for entry in declared if isinstance(declared, list) else []:
            iid, model = entry.get("id"), entry.get("model")
            if iid in self.instances:
                continue
            try:
                self.instances[iid] = create_instance(model, 48000, entry.get("params") or {})
            except (AudioError, ValueError) as exc:
                log.error("instance %s (%s) not created: %s", iid, model, exc)
                continue
            self.models[iid] = model
            self.rate[iid] = 48000

    def report(self) -> list[dict[str, Any]]:
        return [{"id": iid, "model": self.models[iid], "params": inst.params,
                 "report": inst.report()} for iid, inst in sorted(self.instances.items())]

    async def announce(self) -> None:
        await self.session.send(InstancesReport(instances=self.report()))

    # -- reservation ------------------------------------------------------------------

    async def _on_spec(self, message: Message) -> None:
        assert isinstance(message, TaskSpecPush)
        spec_instances = message.spec.get("instances", {})
        params: dict[str, dict[str, Any]] = {}
        for iid in message.instances:
            wanted = spec_instances.get(iid, {})
            if iid not in self.instances:
                await self._refuse(message.task_id, f"this driver hosts no instance {iid!r}")
                return
            if wanted.get("model") != self.models[iid]:
                await self._refuse(message.task_id, f"{iid} is a {self.models[iid]}, "
                                   f"not a {wanted.get('model')}")
                return
            try:
                params[iid] = check_params(self.models[iid], wanted.get("params") or {})
            except ValueError as exc:
                await self._refuse(message.task_id, f"{iid}: {exc}")
                return
        rate = int(message.spec.get("sample_rate", 48000))
        for iid in params:
            if self.rate[iid] != rate:  # outboard follows the session's clock
                self.instances[iid] = create_instance(self.models[iid], rate, params[iid])
                self.rate[iid] = rate
        self.tasks[message.task_id] = params
        log.info("accepted task %s for %s", message.task_id, ", ".join(params) or "nothing")
        await self.session.send(TaskAccepted(task_id=message.task_id))

    async def _refuse(self, task_id: str, reason: str) -> None:
        log.warning("refused task %s: %s", task_id, reason)
        await self.session.send(TaskRefused(task_id=task_id, reason=reason))

    async def _on_drop(self, message: Message) -> None:
        assert isinstance(message, TaskDrop)
        self.tasks.pop(message.task_id, None)
        await self.session.send(TaskDropped(task_id=message.task_id))

    async def _on_params(self, message: Message) -> None:
        assert isinstance(message, InstanceParams)
        instance = self.instances.get(message.instance_id)
        task = self.tasks.get(message.task_id)
        if instance is None or task is None:
            return
        try:
            instance.set_params(message.params)
        except (AudioError, ValueError) as exc:
            log.warning("params for %s refused: %s", message.instance_id, exc)
            return
        task[message.instance_id] = instance.params
        await self.announce()

    # -- audio ------------------------------------------------------------------------

    async def _on_binary(self, frame: bytes) -> None:
        reply = self.reply(frame)
        if reply:
            await self.session.send_bytes(reply)

    def reply(self, frame: bytes) -> bytes:
        """The answer to an ``insert`` frame (from the hub or the direct link); b"" for
        any other kind."""
        header, payload = frames.unpack(frame)
        if header.get("k") != "insert":
            return b""
        iid, task_id = str(header.get("iid")), str(header.get("task"))
        reply = {"k": "insert_result", "task": task_id, "iid": iid, "run": header.get("run"),
                 "seq": header.get("seq"), "ch": header.get("ch"), "dtype": "float64"}
        instance = self.instances.get(iid)
        params = self.tasks.get(task_id, {}).get(iid)
        if instance is None or params is None:
            reply["error"] = f"instance {iid} is not reserved for task {task_id} here"
            return frames.pack(reply)
        try:
            if header.get("reset"):
                instance.reset()
                instance.set_params(params)
            block = frames.block_from(payload, str(header.get("dtype")), int(header["ch"]))
            out = instance.process(block)
        except (AudioError, ValueError) as exc:
            reply["error"] = str(exc)
            return frames.pack(reply)
        reply["report"] = instance.report()
        return frames.pack(reply, frames.block_bytes(out))
