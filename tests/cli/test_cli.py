"""`dronecam --help` (cli/__init__.py): every command is listed."""

from cli_support import dronecam


async def test_help_lists_every_command():
    code, output = await dronecam("--help")
    assert code == 0
    for command in ("serve", "stats", "view", "snapshot"):
        assert command in output
