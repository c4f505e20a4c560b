"""The Starlette gateway, its `partner-gateway` command line and its signed HTTP client."""

from .app import create_app
from .settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
