import io
import os

from django.core.management import call_command
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# The web process refuses to start, as manage.py commands do, when a system check fails
# (a missing secret in production, for one).
call_command("check", stdout=io.StringIO())
