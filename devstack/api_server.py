"""`chalice local` with Nagle's algorithm off on its connections: the one way devstack serves the API.

chalice's request handler sends a response's headers and its body in two writes. With Nagle's algorithm on
(a Python server's default), the body waits until the client acknowledges the headers, and clients delay
that acknowledgement by up to 40 ms: on a kept-alive connection every answer waited for it, however little
the request did. Everything else is `chalice local` as is: same options, same stage configuration.
"""

from __future__ import annotations

import sys


def command(host: str, port: int, stage: str, python: str = sys.executable) -> list[str]:
    """The command that serves the app in the current directory on host:port."""
    return [python, "-m", "devstack.api_server", "local", "--host", host, "--port", str(port),
            "--stage", stage, "--no-autoreload"]


def main() -> int:
    from chalice.cli import main as chalice_main
    from chalice.local import ChaliceRequestHandler

    ChaliceRequestHandler.disable_nagle_algorithm = True  # socketserver.StreamRequestHandler's own switch
    sys.argv[0] = "chalice"
    return int(chalice_main() or 0)


if __name__ == "__main__":
    sys.exit(main())
