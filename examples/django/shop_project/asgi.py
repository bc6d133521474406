"""The shop as an ASGI application, with Onward's dashboard under /onward/.

Serve it with ``uvicorn shop_project.asgi:application``. Without ``ONWARD_DASHBOARD_TOKEN``
the dashboard answers only requests addressed to 127.0.0.1 or localhost; set the token
before serving it anywhere else.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop_project.settings")
django_application = get_asgi_application()  # sets Django up, and with it Onward's store

from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402

from onward.dashboard import create_app  # noqa: E402

token = os.environ.get("ONWARD_DASHBOARD_TOKEN")
dashboard = create_app(token=token, allowed_hosts=None if token else ["127.0.0.1", "localhost"])
application = Starlette(routes=[Mount("/onward", app=dashboard), Mount("/", app=django_application)])
