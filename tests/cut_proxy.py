"""A loopback TCP proxy that can lose a COMMIT's answer, or the COMMIT itself, on purpose.

Armed, it watches what clients send: at the first message holding ``COMMIT`` it either
passes it on, waits for the server's answer and closes the client's connection without
handing the answer over (the COMMIT happened, the client cannot know), or closes both
ends before the server sees it (the COMMIT never happened). Everything else is relayed
as it comes. Real servers, real drivers: only the network is made to fail.
"""

from __future__ import annotations

import enum
import re
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .servers import free_port

# The statement, not a name holding the word (mortar_seq_commit_marker).
_COMMIT = re.compile(rb"(?<![A-Za-z0-9_])COMMIT(?![A-Za-z0-9_])", re.IGNORECASE)


class Cut(enum.Enum):
    ANSWER = "answer"  # the server commits; its answer is lost
    COMMIT = "commit"  # the COMMIT never reaches the server


class CutProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._armed: Cut | None = None
        self._lock = threading.Lock()
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def arm(self, cut: Cut) -> None:
        with self._lock:
            self._armed = cut

    def _take_cut(self) -> Cut | None:
        with self._lock:
            cut, self._armed = self._armed, None
            if cut is not None:
                self.cuts += 1
            return cut

    def _serve(self) -> None:
        self._listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            thread = threading.Thread(target=self._relay, args=(client, server), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _relay(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while not self._stopping.is_set():
                ready, _, _ = select.select([client, server], [], [], 0.1)
                for end in ready:
                    data = end.recv(65536)
                    if not data:
                        return
                    if end is client:
                        if _COMMIT.search(data) and self._commit_cut(data, server):
                            return
                        server.sendall(data)
                    else:
                        client.sendall(data)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def _commit_cut(self, data: bytes, server: socket.socket) -> bool:
        cut = self._take_cut()
        if cut is None:
            return False
        if cut is Cut.ANSWER:
            server.sendall(data)
            server.settimeout(10)
            server.recv(65536)  # the server's answer: the COMMIT is done
        return True

    def start(self) -> None:
        thread = threading.Thread(target=self._serve, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


@contextmanager
def cut_proxy(target_port: int) -> Iterator[CutProxy]:
    proxy = CutProxy(target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
