"""A local Redis Cluster of three masters (no replicas) from the redis-server binary, for
the cluster tests and for trying ``REDIS_CLUSTER=1`` by hand. Never used in production.

``python -m devtools.embedded_cluster [data dir]`` starts one and prints its URL until Ctrl-C.
The cluster is formed with plain commands (``CLUSTER ADDSLOTS``, ``SET-CONFIG-EPOCH``,
``MEET``), so it needs no redis-cli and works on Redis 6.2 (no ``ADDSLOTSRANGE``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from devtools import DATA_DIR
from devtools.embedded_servers import EmbeddedServerError, _alive, _redis_pings, _redis_server_binary

if TYPE_CHECKING:
    import redis

HASH_SLOTS = 16384
_START_TIMEOUT = 30.0
_FORM_TIMEOUT = 30.0
# Ports are drawn from here: the cluster bus listens on port + 10000, which must exist too.
_PORT_RANGE = (20000, 45000)


class EmbeddedCluster:
    """``masters`` redis-server processes in cluster mode on 127.0.0.1, the slots split
    evenly in order (master 0 has the lowest). Its files live in ``data_dir``, which
    ``stop`` removes; ``cluster.json`` there names the owner and the nodes, so a later
    start (or ``stop_abandoned``) can stop the nodes of an owner that died."""

    def __init__(self, data_dir: Path, masters: int = 3) -> None:
        if masters < 1:
            raise ValueError("a cluster needs at least one master")
        self.data_dir = data_dir.resolve()
        self.masters = masters
        self.ports: list[int] = []
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """A URL of one master: what REDIS_URL names with REDIS_CLUSTER=1."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def pids(self) -> list[int]:
        """The node processes, in the order of ``ports`` (fault tests pause one)."""
        return [process.pid for process in self._processes]

    def slot_ranges(self) -> list[tuple[int, int]]:
        """The (first, last) slot of each master, in the order of ``ports``."""
        bounds = [HASH_SLOTS * i // self.masters for i in range(self.masters + 1)]
        return [(bounds[i], bounds[i + 1] - 1) for i in range(self.masters)]

    def port_of_slot(self, slot: int) -> int:
        # strict=False: before start there are no ports, and no slot has an owner.
        for port, (first, last) in zip(self.ports, self.slot_ranges(), strict=False):
            if first <= slot <= last:
                return port
        raise ValueError(f"slot {slot} is outside 0..{HASH_SLOTS - 1}")

    # -- start and stop ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the nodes and form the cluster; return once every node says it is ok."""
        if not stop_abandoned(self.data_dir) and (self.data_dir / "cluster.json").exists():
            raise EmbeddedServerError(f"{self.data_dir} holds the cluster of a live process")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for _ in range(self.masters):
                self._spawn_node()
            self._form()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Shut every node down (no save) and remove the data folder."""
        for port, process in zip(self.ports, self._processes, strict=True):  # appended together
            _shutdown(port, process.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_START_TIMEOUT)
        self.ports, self._processes = [], []
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn_node(self) -> None:
        for _ in range(5):  # a free port can be taken between the probe and the bind
            port = _free_cluster_port(exclude=self.ports)
            log = self.data_dir / f"node-{port}.log"
            process = subprocess.Popen(
                [
                    _redis_server_binary(),
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(self.data_dir / f"nodes-{port}.conf"),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.data_dir),
                    "--logfile",
                    str(log),
                    "--daemonize",
                    "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in a terminal reaches the owner, which stops it
            )
            deadline = time.monotonic() + _START_TIMEOUT
            while time.monotonic() < deadline and process.poll() is None and not _redis_pings(port):
                time.sleep(0.02)
            if process.poll() is None and _redis_pings(port):
                self.ports.append(port)
                self._processes.append(process)
                self._write_state()  # at once: an owner killed now still leaves its nodes named
                return
            if process.poll() is None:
                process.kill()
            process.wait()
            tail = _tail(log)
        raise EmbeddedServerError(f"a cluster node did not start:\n{tail}")

    def _form(self) -> None:
        import redis

        clients = [redis.Redis(port=port, decode_responses=True, socket_timeout=10) for port in self.ports]
        try:
            for epoch, (client, (first, last)) in enumerate(zip(clients, self.slot_ranges(), strict=True), start=1):
                # Distinct epochs up front, as redis-cli does: no collision to resolve later.
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", epoch)
                client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
            for port in self.ports[1:]:
                clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
            deadline = time.monotonic() + _FORM_TIMEOUT
            while not all(self._agrees(client) for client in clients):
                if time.monotonic() > deadline:
                    infos = "\n".join(client.execute_command("CLUSTER", "INFO") for client in clients)
                    raise EmbeddedServerError(f"the cluster did not form in {_FORM_TIMEOUT:.0f} s:\n{infos}")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()

    def _agrees(self, client: redis.Redis) -> bool:
        """The node says ok, knows every master, and maps every slot range to its owner."""
        info = dict(line.split(":", 1) for line in client.execute_command("CLUSTER", "INFO").split() if ":" in line)
        if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != self.masters:
            return False
        seen = {
            (int(first), int(last), int(owner[1]))
            for first, last, owner, *_ in client.execute_command("CLUSTER", "SLOTS")
        }
        return seen == {(first, last, port) for port, (first, last) in zip(self.ports, self.slot_ranges(), strict=True)}

    def _write_state(self) -> None:
        state = {
            "owner": os.getpid(),
            "nodes": [
                {"port": port, "pid": process.pid} for port, process in zip(self.ports, self._processes, strict=True)
            ],
        }
        (self.data_dir / "cluster.json").write_text(json.dumps(state))


def stop_abandoned(data_dir: Path) -> bool:
    """Stop the nodes of the cluster in ``data_dir`` if its owner process is gone (a run
    killed midway), and remove its files; True if it did. A live owner's cluster is left."""
    try:
        state = json.loads((data_dir / "cluster.json").read_text())
        owner, nodes = int(state["owner"]), [(int(n["port"]), int(n["pid"])) for n in state["nodes"]]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if _alive(owner):
        return False
    for port, pid in nodes:
        _shutdown(port, pid)
    shutil.rmtree(data_dir, ignore_errors=True)
    return True


def _shutdown(port: int, pid: int) -> None:
    """SHUTDOWN NOSAVE the node at ``port`` (if ``pid`` is still that node), wait for it."""
    import redis

    if not _alive(pid):
        return
    if _redis_pings(port):
        with contextlib.suppress(redis.RedisError):
            redis.Redis(port=port, socket_timeout=5).shutdown(nosave=True)
    deadline = time.monotonic() + _START_TIMEOUT
    while _alive(pid) and _redis_pings(port):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.02)


def _free_cluster_port(exclude: list[int]) -> int:
    """A port free now whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = random.randrange(*_PORT_RANGE)
        if port in exclude or port + 10000 in exclude:
            continue
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise EmbeddedServerError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return "(no log)"


def main(argv: list[str]) -> int:
    data_dir = Path(argv[0]) if argv else DATA_DIR / "cluster"
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it as Ctrl-C does
    with EmbeddedCluster(data_dir) as cluster:
        print(
            f"REDIS_CLUSTER=1 REDIS_URL={cluster.url}  (masters: {', '.join(map(str, cluster.ports))}); "
            "Ctrl-C or SIGTERM stops it",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
