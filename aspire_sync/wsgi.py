import os

from django.core.wsgi import get_wsgi_application

from aspire_sync.heap import freeze_start_up_heap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aspire_sync.settings")
application = get_wsgi_application()
# Each gunicorn worker imports this module after it forks (the app is not preloaded).
freeze_start_up_heap()
