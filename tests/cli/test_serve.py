"""`dronecam serve` (cli/serve.py) as a user runs it: bad options get a one-line answer."""

from cli_support import dronecam


async def test_serve_rejects_bad_options():
    code, output = await dronecam("serve", "--size", "big")
    assert code != 0 and "--size: must look like 640x480" in output
    code, output = await dronecam("serve", "--source", "nonsense:")
    assert code == 2 and "unknown source" in output
