import os

from django.core.asgi import get_asgi_application

from memoryweb import bootstrap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")
bootstrap.prepare()
application = get_asgi_application()
