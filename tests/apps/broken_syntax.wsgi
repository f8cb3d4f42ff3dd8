# Deliberately not valid Python.
def application(environ, start_response)
    return [b'never']
