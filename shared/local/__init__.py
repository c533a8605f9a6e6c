"""Local stand-ins for Azure services (Azurite), for tests and the demo."""
