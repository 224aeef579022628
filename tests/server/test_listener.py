"""server/listener.py: the start-up log names the endpoint."""

import logging

from support import host_server


async def test_start_up_log_names_the_endpoint(caplog):
    caplog.set_level(logging.INFO, logger="dronecam.server")
    async with host_server() as server:
        pass
    lines = [record.getMessage() for record in caplog.records]
    assert "[VideoStreamServer] WebSocket-only video stream server started successfully!" in lines
    assert "[VideoStreamServer] WebSocket endpoint: %s" % server.url in lines
