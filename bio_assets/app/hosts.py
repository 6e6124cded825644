"""Stand-in hosts on one machine, for ``make cluster-demo`` and the cluster tests.

Where ``ip netns`` works (root, or CAP_NET_ADMIN), each host is a network namespace with its own
loopback, joined to this machine by a veth pair on a private /30 link: a process there reaches
nothing of this machine but the addresses it is told. The services the cluster needs (RabbitMQ,
PostgreSQL) listen on this machine's loopback only, so a relay (``Relay``) forwards each one from
the link address this machine has on that host's link; the services then see connections from
loopback, as from a local client. Elsewhere the hosts are plain processes on this machine.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass, field

NAMESPACE_PREFIX = "bioassets-h"
LINK_NET = "10.213"  # host k: this machine 10.213.k.1, the host 10.213.k.2 (a /30 link each)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def namespaces_available() -> bool:
    """Whether this process may create network namespaces (tried, then removed)."""
    if shutil.which("ip") is None:
        return False
    probe = f"{NAMESPACE_PREFIX}probe{os.getpid()}"
    if _ip("netns", "add", probe, check=False).returncode != 0:
        return False
    _ip("netns", "del", probe, check=False)
    return True


class Relay:
    """TCP forwarder: accepts on ``listen`` and pipes each connection to ``target``, both ways."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.server.settimeout(0.5)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True, name=f"relay {listen}->{target}")
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.stopping.set()
        self.server.close()


@dataclass
class Host:
    """One stand-in host: ``name``, its namespace (``None``: a plain process on this machine) and the
    address under which it reaches this machine's services."""

    name: str
    namespace: str | None
    services_address: str  # where the host connects to reach RabbitMQ and PostgreSQL
    relays: list[Relay] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the host."""
        return ["ip", "netns", "exec", self.namespace, *argv] if self.namespace else argv


def create_hosts(count: int, ports: tuple[int, ...], *, isolated: bool) -> list[Host]:
    """``count`` hosts; with ``isolated`` each in its own namespace with relays for ``ports``."""
    if not isolated:
        return [Host(f"host-{k}", None, "127.0.0.1") for k in range(1, count + 1)]
    hosts = []
    try:
        for k in range(1, count + 1):
            name = f"{NAMESPACE_PREFIX}{k}"
            remove_namespace(name)
            outside, inside = f"{LINK_NET}.{k}.1", f"{LINK_NET}.{k}.2"
            veth, peer = f"bah{k}a", f"bah{k}b"
            _ip("netns", "add", name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", name)
            _ip("addr", "add", f"{outside}/30", "dev", veth)
            _ip("link", "set", veth, "up")
            for args in (
                ("addr", "add", f"{inside}/30", "dev", peer),
                ("link", "set", peer, "up"),
                ("link", "set", "lo", "up"),
            ):
                _ip("-n", name, *args)
            host = Host(f"host-{k}", name, outside)
            host.relays = [Relay((outside, port), ("127.0.0.1", port)) for port in ports]
            hosts.append(host)
    except BaseException:
        remove_hosts(hosts)
        raise
    return hosts


def remove_namespace(name: str) -> None:
    _ip("netns", "del", name, check=False)  # its veth end goes with it, and the pair with that


def remove_hosts(hosts: list[Host]) -> None:
    for host in hosts:
        for relay in host.relays:
            relay.close()
        if host.namespace:
            remove_namespace(host.namespace)
