"""fullon_gateway: the single front door of the fullon trading platform."""

__version__ = "0.1.0"
