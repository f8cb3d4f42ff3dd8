# Uses up the daemon process's file descriptors for a while: ?hold=SECONDS
# lowers the soft RLIMIT_NOFILE to a little above what is open now, opens
# /dev/null until no descriptor is left, and gives everything back after
# SECONDS from a thread (the response returns at once).
import os
import resource
import threading
import time
from urllib.parse import parse_qs


def application(environ, start_response):
    hold = float(parse_qs(environ.get('QUERY_STRING', '')).get('hold', ['0'])[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir('/proc/self/fd')) + 8, hard))
    held = []
    try:
        while True:
            held.append(os.open('/dev/null', os.O_RDONLY))
    except OSError:
        pass

    def give_back():
        time.sleep(hold)
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    threading.Thread(target=give_back, daemon=True).start()
    body = b'holding %d descriptors' % len(held)
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]
