# WSGIPassApacheRequest: uses environ['apache.request_rec'] as C code
# would, through ctypes: the pointer it holds (the capsule has no name)
# given to Apache's own functions. Each capsule is kept, and the next
# request reports whether the one before is still usable.
import ctypes
import json

_api = ctypes.pythonapi
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_IsValid.restype = ctypes.c_int
_api.PyCapsule_IsValid.argtypes = [ctypes.py_object, ctypes.c_char_p]
_api.PyCapsule_GetName.restype = ctypes.c_char_p
_api.PyCapsule_GetName.argtypes = [ctypes.py_object]
_httpd = ctypes.CDLL(None)
_httpd.ap_get_server_port.restype = ctypes.c_uint16
_httpd.ap_get_server_port.argtypes = [ctypes.c_void_p]
_httpd.ap_document_root.restype = ctypes.c_char_p
_httpd.ap_document_root.argtypes = [ctypes.c_void_p]
_kept = []


def application(environ, start_response):
    report = {'present': 'apache.request_rec' in environ,
              'server_port': environ['SERVER_PORT'], 'document_root': environ['DOCUMENT_ROOT']}
    if _kept:
        before = _kept[-1]
        report['before_valid'] = _api.PyCapsule_IsValid(before, None)
        try:
            _api.PyCapsule_GetPointer(before, None)
            report['before_pointer'] = 'usable'
        except ValueError as e:
            report['before_pointer'] = 'ValueError: %s' % e
    capsule = environ.get('apache.request_rec')
    if capsule is not None:
        report['type'] = type(capsule).__name__
        name = _api.PyCapsule_GetName(capsule)
        report['name'] = name and name.decode()
        pointer = _api.PyCapsule_GetPointer(capsule, None)
        report['port_from_request_rec'] = _httpd.ap_get_server_port(pointer)
        report['document_root_from_request_rec'] = _httpd.ap_document_root(pointer).decode()
        _kept.append(capsule)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(report).encode()]
