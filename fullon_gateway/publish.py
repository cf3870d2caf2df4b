"""The publisher trading services call, under its first name: it lives in
``fullon_gateway.stream.publish`` now, and this name stays for the services (and
scripts) that import it from here."""

from fullon_gateway.stream.publish import BARS_KEPT, Publisher

__all__ = ["BARS_KEPT", "Publisher"]
