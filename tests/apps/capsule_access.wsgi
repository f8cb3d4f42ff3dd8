# A WSGIAccessScript that lets a request in only when its environ holds the
# apache.request_rec capsule (WSGIPassApacheRequest On).
def allow_access(environ, host):
    return 'apache.request_rec' in environ
