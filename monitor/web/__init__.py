"""The HTTP server inside ``monitor run``: health, metrics, the JSON API (and the
dashboard, later) on one ASGI app served by uvicorn in the service's own event loop.

It reads and changes the service only through the :class:`~monitor.web.context.WebContext`
it is given; it never polls or sends by itself.
"""
