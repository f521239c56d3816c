import os

from django.core.wsgi import get_wsgi_application

from memoryweb import bootstrap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryweb.settings")
bootstrap.prepare()
application = get_wsgi_application()
