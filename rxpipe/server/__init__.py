"""The HTTP side: Tornado handlers (health for now; REST, WebSocket and metrics later)."""
