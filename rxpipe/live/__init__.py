"""The live side: what the dashboard and the WebSocket show, fed by the pipeline as a sink."""
