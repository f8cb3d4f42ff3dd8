# Raises while the script is being loaded.
raise RuntimeError('mwrs-import-time-failure')


def application(environ, start_response):
    start_response('200 OK', [])
    return [b'never']
