"""The browser dashboard: one page that logs in and watches the platform live."""
