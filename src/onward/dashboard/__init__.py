"""The web dashboard: every job, its steps and its chain, live (``pip install 'onward[dashboard]'``).

Run it with ``onward dashboard``, or mount :func:`create_app` in your own ASGI application.
"""

from onward.dashboard.app import create_app

__all__ = ["create_app"]
