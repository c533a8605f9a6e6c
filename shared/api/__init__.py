"""The findings HTTP API: a FastAPI app served by the Azure Functions host or locally by uvicorn."""

from shared.api.app import ApiConfigurationError, create_api, create_local_api, local_api_key

__all__ = ["ApiConfigurationError", "create_api", "create_local_api", "local_api_key"]
