"""One suite, every server: each test here runs against each implementation of the contract.

A server factory is an async context manager taking keyword options `max_clients`,
`heartbeat_interval_ms` and `stream_timeout_ms`, and yielding an object with `.url`.
"""

import pytest

from support import host_server
from support_firmware import firmware_server

SERVERS = {"host": host_server, "firmware": firmware_server}


@pytest.fixture(params=sorted(SERVERS))
def start_server(request):
    return SERVERS[request.param]
