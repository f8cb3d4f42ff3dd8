import os
import sys

from django.conf import settings
from django.http import JsonResponse
from django.urls import path

import mysite


def whoami(request):
    return JsonResponse({
        'site': settings.SITE_NAME,
        'package': os.path.dirname(mysite.__file__),
        'pid': os.getpid(),
        'interpreter': id(sys.modules),
        'group': request.META['mod_wsgi.application_group'],
    })


urlpatterns = [path('', whoami)]
