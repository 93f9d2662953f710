"""A private network namespace per smoke boot, and forwarders into it for local backing services.

Why a namespace: each app gets its own loopback, so it listens on exactly the port its artifacts
name (8000, 3000...) while other smoke boots, other helpers' tests and the machine's own services
use the same numbers; nothing is rewritten, and an app that listens elsewhere fails as it would
in its container. The namespace belongs to one dedicated thread (network namespaces are per
thread on Linux): sockets and processes made by that thread live in it. A forwarder listens
inside (e.g. 127.0.0.1:5432) and connects out from a thread of the machine's namespace, so the
app reaches the machine's PostgreSQL / MariaDB / Redis / RabbitMQ as if they were its neighbours.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import queue
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from agents.qa.smoke.sandbox import SandboxUnavailable

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


class NetNamespace:
    """A fresh network namespace with loopback up, owned by a dedicated thread; ``call`` runs a
    function inside it. SandboxUnavailable when the machine does not allow one (not root)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue()
        ready: Future[str] = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="smoke-netns", daemon=True)
        self._thread.start()
        try:
            self.inode = ready.result(timeout=10)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot create a network namespace: {exc}") from None

    def _serve(self, ready: Future[str]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            ready.set_exception(OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno())))
            return
        try:
            _loopback_up()
        except OSError as exc:
            ready.set_exception(exc)
            return
        ready.set_result(os.readlink("/proc/thread-self/ns/net"))
        while (job := self._jobs.get()) is not None:
            function, result = job
            try:
                result.set_result(function())
            except BaseException as exc:
                result.set_exception(exc)

    def call(self, function: Callable[[], T], timeout: float | None = 60) -> T:
        """Run ``function`` in the namespace and return its result (or raise its exception)."""
        result: Future[T] = Future()
        self._jobs.put((function, result))
        return result.result(timeout=timeout)

    def close(self) -> None:
        """End the owning thread; the namespace goes when its last process and socket do."""
        self._jobs.put(None)
        self._thread.join(timeout=5)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, _SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


def port_open(port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port (call inside the namespace)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


class Forwarder:
    """Listens on 127.0.0.1:``port`` (and ::1) inside ``ns``; relays each connection to
    127.0.0.1:``target`` of the machine. Must be created from a thread of the machine's namespace."""

    def __init__(self, ns: NetNamespace, port: int, target: int | None = None) -> None:
        self.target = target or port
        self.listeners = [ns.call(lambda: socket.create_server(("127.0.0.1", port)))]
        with contextlib.suppress(OSError):
            self.listeners.append(
                ns.call(lambda: socket.create_server(("::1", port), family=socket.AF_INET6))
            )
        self._open: list[socket.socket] = []
        self._closed = False
        for listener in self.listeners:
            threading.Thread(
                target=self._accept, args=(listener,), name=f"smoke-fwd-{port}", daemon=True
            ).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed:
            try:
                inside, _ = listener.accept()
            except OSError:
                return
            try:
                outside = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            self._open += [inside, outside]
            for a, b in ((inside, outside), (outside, inside)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        self._closed = True
        for sock in [*self.listeners, *self._open]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
