"""memoryweb_client: a small typed client for memoryweb's REST API."""

from memoryweb_client.client import ApiError, Client, MemorywebError, TransportError

__version__ = "0.1.0"
__all__ = ("ApiError", "Client", "MemorywebError", "TransportError", "__version__")
