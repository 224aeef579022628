"""The Python examples in the docs run as written, against a live server."""

import asyncio
import re
from pathlib import Path

import pytest

from support import host_server, seconds

DOCS = Path(__file__).parent.parent / "docs"
EXAMPLE_URL = "ws://127.0.0.1:8080/ws"


def _python_blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text()
    return [
        block for block in re.findall(r"```python\n(.*?)```", text, re.S) if EXAMPLE_URL in block
    ]


@pytest.mark.parametrize(
    "block", _python_blocks("client.md"), ids=lambda block: block.split("\n")[0]
)
async def test_client_examples_run(block):
    async with host_server() as server:
        code = block.replace(EXAMPLE_URL, server.url).replace("asyncio.run(main())", "")
        namespace: dict = {}
        await asyncio.to_thread(exec, code, namespace)
        if "main" in namespace:
            await asyncio.wait_for(namespace["main"](), seconds(15))
