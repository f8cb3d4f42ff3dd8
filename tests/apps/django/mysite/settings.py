import os

# The name of the directory this copy of the project lives in.
SITE_NAME = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET_KEY = 'test-only-' + SITE_NAME
DEBUG = False
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'mysite.urls'
INSTALLED_APPS = []
MIDDLEWARE = []
DATABASES = {}
USE_TZ = True
