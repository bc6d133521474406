"""A TCP proxy that misbehaves: put it between Onward's workers and PostgreSQL to drop, stall
and half-close their connections at random moments, including between a ``COMMIT`` (or any
statement) reaching the server and its reply reaching the client. The server itself is never
touched. Threads only; used by tests/integration/test_proxy_faults.py."""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

FAULTS = ("drop", "stall", "half_close_client", "half_close_server", "drop_after_commit", "drop_reply")


class Pipe:
    """One client connection and its connection to the server."""

    def __init__(self, proxy: FaultyProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.flowing = threading.Event()
        self.flowing.set()
        self.dead = threading.Event()
        self.drop_after_commit = False  # drop when the reply to the next COMMIT comes back
        self.commit_sent = False
        self.drop_reply = False  # drop when the reply to the next request comes back
        self.request_sent = False
        self._lock = threading.Lock()

    def start(self) -> None:
        for src, dst, upward in ((self.client, self.upstream, True), (self.upstream, self.client, False)):
            threading.Thread(target=self._pump, args=(src, dst, upward), daemon=True, name="faultproxy-pump").start()

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool) -> None:
        try:
            while not self.dead.is_set():
                data = src.recv(65536)
                if not data:  # a half-close: pass it on
                    with self._lock:
                        if not self.dead.is_set():
                            dst.shutdown(socket.SHUT_WR)
                    return
                self.flowing.wait()
                if upward:
                    if self.drop_after_commit and b"COMMIT" in data:
                        self.commit_sent = True
                    if self.drop_reply:
                        self.request_sent = True
                elif self.commit_sent or self.request_sent:
                    # The server did the work (and committed); the client never hears of it.
                    self.proxy.count("reply lost after COMMIT" if self.commit_sent else "reply lost")
                    self.kill()
                    return
                dst.sendall(data)
        except OSError:
            self.kill()

    def kill(self) -> None:
        """Reset both connections at once (RST, not FIN)."""
        with self._lock:
            if self.dead.is_set():
                return
            self.dead.set()
            self.flowing.set()
            for sock in (self.client, self.upstream):
                # SHUT_RD wakes the pump blocked in recv() on this socket (close() alone would
                # not, and the socket would stay open until it returned); the zero linger makes
                # the close a reset.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)
                with contextlib.suppress(OSError):
                    sock.close()

    def half_close(self, toward_client: bool) -> None:
        """Send FIN one way only: the client (or the server) reads end-of-file while the
        other side still thinks the connection is open."""
        with self._lock:
            if self.dead.is_set():
                return
            with contextlib.suppress(OSError):
                (self.client if toward_client else self.upstream).shutdown(socket.SHUT_WR)
        if toward_client:
            self.flowing.clear()  # and stop passing replies; the client must notice by itself
            threading.Timer(5.0, self.kill).start()

    def stall(self, seconds: float) -> None:
        self.flowing.clear()
        threading.Timer(seconds, self.flowing.set).start()


class FaultyProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``target``. ``start_chaos`` applies a
    random fault to a random live connection every ``interval`` (a range of seconds);
    ``calm`` stops the faults and lets every stalled connection flow again."""

    def __init__(self, target: tuple[str, int], seed: int | None = None) -> None:
        self.target = target
        self.random = random.Random(seed)
        self.faults: Counter[str] = Counter()
        self._pipes: list[Pipe] = []
        self._lock = threading.Lock()
        self._chaos = threading.Event()
        self._closed = threading.Event()
        self.refuse_rate = 0.0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True, name="faultproxy-accept").start()

    def count(self, fault: str) -> None:
        with self._lock:
            self.faults[fault] += 1

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if self._chaos.is_set() and self.random.random() < self.refuse_rate:
                self.count("connection refused")
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pipe = Pipe(self, client, upstream)
            with self._lock:
                self._pipes = [p for p in self._pipes if not p.dead.is_set()]
                self._pipes.append(pipe)
            pipe.start()

    def live(self) -> list[Pipe]:
        with self._lock:
            return [p for p in self._pipes if not p.dead.is_set()]

    def start_chaos(self, interval: tuple[float, float] = (0.05, 0.3), refuse_rate: float = 0.05) -> None:
        self.refuse_rate = refuse_rate
        self._chaos.set()
        threading.Thread(target=self._run_chaos, args=(interval,), daemon=True, name="faultproxy-chaos").start()

    def _run_chaos(self, interval: tuple[float, float]) -> None:
        actions: dict[str, Callable[[Pipe], None]] = {
            "drop": lambda p: p.kill(),
            "stall": lambda p: p.stall(self.random.uniform(0.1, 2.0)),
            "half_close_client": lambda p: p.half_close(toward_client=True),
            "half_close_server": lambda p: p.half_close(toward_client=False),
            "drop_after_commit": self._arm_commit_drops,
            "drop_reply": lambda p: setattr(p, "drop_reply", True),
        }
        while self._chaos.is_set():
            time.sleep(self.random.uniform(*interval))
            pipes = self.live()
            if not pipes or not self._chaos.is_set():
                continue
            fault = self.random.choice(FAULTS)
            actions[fault](self.random.choice(pipes))
            self.count(fault)

    def _arm_commit_drops(self, pipe: Pipe) -> None:
        """Arm ``pipe`` and two more: a given connection may not commit for a while."""
        for chosen in [pipe, *self.random.sample(self.live(), min(2, len(self.live())))]:
            chosen.drop_after_commit = True

    def calm(self) -> None:
        """No more faults; stalled connections flow again; armed drops are disarmed."""
        self._chaos.clear()
        for pipe in self.live():
            pipe.drop_after_commit = pipe.drop_reply = False
            if not (pipe.commit_sent or pipe.request_sent):
                pipe.flowing.set()

    def close(self) -> None:
        self.calm()
        self._closed.set()
        self.server.close()
        for pipe in self.live():
            pipe.kill()
