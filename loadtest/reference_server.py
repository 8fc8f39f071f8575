"""A server that answers every request at once with a fixed 200: the load tool's own ceiling.

``python -m loadtest.reference_server --port 18999 [--processes 1]``, then point
``python -m loadtest run --scenario health`` and wrk at it: whichever client reaches the
higher rate against a server this cheap shows its own limit. Never a model of the service.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import socket

import httptools
import uvloop

_ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"status":"ok"}'


class _Answering(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self) -> None:
        self.transport.write(_ANSWER)  # type: ignore[attr-defined]


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Answering, sock=sock)
        await server.serve_forever()

    uvloop.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.reference_server", description=__doc__)
    parser.add_argument("--port", type=int, default=18999)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(1024)
    print(f"answering on http://127.0.0.1:{args.port}", flush=True)
    workers = [multiprocessing.Process(target=_serve, args=(sock,)) for _ in range(args.processes - 1)]
    for worker in workers:
        worker.start()
    try:
        _serve(sock)
    except KeyboardInterrupt:
        pass
    finally:
        for worker in workers:
            worker.terminate()


if __name__ == "__main__":
    main()
