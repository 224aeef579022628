"""Media for tools and tests: a source that replays given JPEGs, and synthetic JPEGs."""

from __future__ import annotations

import asyncio

from ..sources.synthetic import SyntheticCamera


class ListSource:
    """A source that replays given JPEGs (or raises given exceptions) at a fixed rate."""

    name = "list"

    def __init__(self, items: list, fps: float = 30, loop: bool = True) -> None:
        self.items = items
        self.fps = fps
        self.loop = loop
        self.index = 0
        self.opened = 0
        self.closed = 0

    async def open(self) -> None:
        self.opened += 1

    async def read(self) -> bytes:
        await asyncio.sleep(1 / self.fps)
        if self.index >= len(self.items):
            if not self.loop:
                await asyncio.Event().wait()
            self.index = 0
        item = self.items[self.index]
        self.index += 1
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        self.closed += 1


def synthetic_jpegs(count: int = 30, width: int = 640, height: int = 480) -> list[bytes]:
    """Real JPEGs of the synthetic scene, for sources and parsers under test."""
    camera = SyntheticCamera(width, height)
    return [camera.render(number) for number in range(1, count + 1)]
