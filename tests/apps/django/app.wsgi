# A Django project: copied twice by test_interpreters.py, into directories
# whose names become SITE_NAME. Both copies name their package "mysite", so
# a project that ran in the other's interpreter would import the other's.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Assigned rather than setdefault: os.environ is shared by every
# interpreter of the process.
os.environ['DJANGO_SETTINGS_MODULE'] = 'mysite.settings'

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
