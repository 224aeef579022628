"""`dronecam view` (cli/window.py) without a GUI: it says which extra to install."""

from cli_support import dronecam

from support import host_server


async def test_view_without_a_gui_says_what_to_install():
    async with host_server() as server:
        code, output = await dronecam("view", server.url)
    assert code != 0
    assert "dronecam[view]" in output
