"""The asyncio application: scheduler, daily run pipeline, health server."""
