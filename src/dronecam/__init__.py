"""dronecam: live drone-camera video over WebSocket (docs/protocol.md, docs/architecture.md)."""

__version__ = "0.1.0"
