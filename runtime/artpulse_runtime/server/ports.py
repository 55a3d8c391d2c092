"""The server's ports are checked before anything starts: a port another process holds (or
two listeners set to one port) stops the start with one line, instead of a traceback after
the first listener has announced itself, or a gRPC server silently sharing a port."""

from __future__ import annotations

import errno
import socket

from mlserver.settings import Settings


class PortInUseError(RuntimeError):
    """A port the server needs is taken; the message names it and its variable."""


def listeners(settings: Settings) -> list[tuple[str, int]]:
    """What the server listens on: (description naming the variable, port)."""
    ports = [
        ("HTTP (MLSERVER_HTTP_PORT)", settings.http_port),
        ("gRPC (MLSERVER_GRPC_PORT)", settings.grpc_port),
    ]
    if settings.metrics_endpoint:
        ports.append(("metrics (MLSERVER_METRICS_PORT)", settings.metrics_port))
    return ports


def _bindable(host: str, port: int) -> OSError | None:
    """None when a listener could bind ``host:port`` now, else the error binding it gave."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        return exc
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners do
        try:
            probe.bind(address)
        except OSError as exc:
            return exc
    return None


def check_ports(settings: Settings) -> None:
    """Raise ``PortInUseError`` unless every listener of ``settings`` can bind its port."""
    host = settings.host
    seen: dict[int, str] = {}
    for what, port in listeners(settings):
        if port in seen:
            raise PortInUseError(f"{seen[port]} and {what} are both set to port {port}")
        seen[port] = what
        if port == 0:
            continue  # the system picks a free one
        error = _bindable(host, port)
        if error is None:
            continue
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} for {what} on {host} is in use by another process; stop it or "
                "choose another port"
            )
        raise PortInUseError(f"cannot listen on {host}:{port} for {what}: {error.strerror}")
