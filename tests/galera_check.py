"""A Synced-only health check of a Galera node over HTTP, for HAProxy's ``option httpchk``.

It answers 200 only while the node says ``wsrep_local_state`` = 4 (Synced) and
``wsrep_ready`` = ON, and 503 otherwise: a node that is down, still joining (IST, SST),
donating a snapshot or cut off from the primary component takes no clients. This is what
``clustercheck`` does in deployments; here it is a thread of the test process per node.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pymysql

from .servers import free_port

SYNCED = "4"
# HAProxy gives a check 1 s ("timeout check"): a node that does not answer in time is down.
_CONNECT_SECONDS = 0.5
_READ_SECONDS = 0.4


def node_synced(port: int) -> bool:
    """Whether the Galera node on loopback *port* is Synced and ready; False when unreachable."""
    try:
        connection = pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="root",
            connect_timeout=_CONNECT_SECONDS,
            read_timeout=_READ_SECONDS,
            write_timeout=_READ_SECONDS,
        )
    except pymysql.MySQLError:
        return False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW STATUS LIKE 'wsrep_local_state'")
            state = cursor.fetchone()
            cursor.execute("SHOW STATUS LIKE 'wsrep_ready'")
            ready = cursor.fetchone()
    except pymysql.MySQLError:
        return False
    finally:
        connection.close()
    return state is not None and state[1] == SYNCED and ready is not None and ready[1] == "ON"


def _handler(node_port: int) -> type[BaseHTTPRequestHandler]:
    class Check(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = "200 OK" if node_synced(node_port) else "503 Service Unavailable"
            # One write: HAProxy resets a check's connection once it has read the status line.
            self.wfile.write(f"HTTP/1.0 {status}\r\nContent-Length: 0\r\n\r\n".encode())

        def log_message(self, format: str, *args: object) -> None:
            pass  # several checks a second: nothing worth a line on stderr

    return Check


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exception(), ConnectionError):  # HAProxy resets its checks
            super().handle_error(request, client_address)


@contextmanager
def synced_check(node_port: int) -> Iterator[int]:
    """Serve the check of the node on *node_port*; yield the check's own loopback port.

    The server runs in a daemon thread and is shut down, and its socket closed, on the way out.
    """
    server = _Server(("127.0.0.1", free_port()), _handler(node_port))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
