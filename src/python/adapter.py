"""The Python half of mod_wsgi-rs's WSGI adapter.

Run once per interpreter (one per application group). The native functions it calls (_start, _write,
_finish, _read, _readline, _sendfile, _headers_sent, _log) act on the
request that the calling thread is serving; outside a request they raise
RuntimeError. Everything here is plain Python so that it can run unchanged
in any interpreter.
"""
import hashlib
import io
import os
import stat
import sys
import threading
import time
import traceback
import types


class FileWrapper:
    """wsgi.file_wrapper: regular files are sent by Apache itself."""

    __slots__ = ('filelike', 'blksize')

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration

    def close(self):
        close = getattr(self.filelike, 'close', None)
        if close is not None:
            close()


class Input:
    """wsgi.input: the request body, read as the app asks for it."""

    __slots__ = ()

    def read(self, size=-1):
        return _read(-1 if size is None else size)

    def readline(self, size=-1):
        return _readline(-1 if size is None else size)

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = _readline(-1)
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = _readline(-1)
        if line:
            return line
        raise StopIteration

    def close(self):
        pass


class ErrorLog(io.TextIOBase):
    """wsgi.errors, sys.stdout and sys.stderr: each complete line becomes one
    error-log entry, tagged with the request when written on its thread."""

    def __init__(self, name):
        self._name = name
        self._pending = threading.local()

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return 'utf-8'

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError('write() argument must be str, not %s' % type(text).__name__)
        pending = getattr(self._pending, 'text', '')
        *lines, rest = (pending + text).split('\n')
        self._pending.text = rest
        if rest:
            _unflushed.__dict__.setdefault('logs', set()).add(self)
        for line in lines:
            _log(line)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pending = getattr(self._pending, 'text', '')
        if pending:
            self._pending.text = ''
            _log(pending)


# The ErrorLogs holding text without a newline written on this thread:
# logged when the thread's request ends, not later under another request.
_unflushed = threading.local()


def _flush_error_logs():
    for log in _unflushed.__dict__.pop('logs', ()):
        log.flush()


class Restricted:
    """Stands in for sys.stdin / sys.stdout under WSGIRestrictStdin/Stdout."""

    def __init__(self, name, directive):
        self._message = '%s access is restricted by %s On' % (name, directive)

    def __getattr__(self, attr):
        raise OSError(self._message)


def start_response(status, headers, exc_info=None):
    if exc_info is not None:
        if not isinstance(exc_info, tuple) or len(exc_info) != 3:
            raise RuntimeError('exc_info passed to start_response() must be a '
                               'tuple (type, value, traceback) as sys.exc_info() '
                               'returns, not %r' % (exc_info,))
        try:
            if _headers_sent():
                raise exc_info[1].with_traceback(exc_info[2])
        finally:
            exc_info = None
        _start(status, headers, True)
    else:
        _start(status, headers, False)
    return _write


def _send_file(wrapper):
    """The file_wrapper fast path: Apache sends a regular file from its
    current position. False when the object is not such a file."""
    filelike = wrapper.filelike
    try:
        fd = filelike.fileno()
        position = filelike.tell()
        info = os.fstat(fd)
    except Exception:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    return _sendfile(fd, position, max(info.st_size - position, 0))


_scripts = {}
_scripts_lock = threading.Lock()


def _reload_required(module, resource):
    """The script's own say on whether it must be loaded afresh for a
    request for `resource` (the file the request maps to): its
    reload_required(resource), if it defines one. A failing hook is logged
    and keeps the module, so a broken hook cannot reload on every request."""
    check = getattr(module, 'reload_required', None)
    if check is None or resource is None:
        return False
    try:
        return bool(check(resource))
    except Exception:
        _log('Exception in reload_required() of WSGI script %r:' % module.__file__)
        for line in traceback.format_exc().rstrip('\n').split('\n'):
            _log(line)
        return False


def _stale(entry, mtime, resource):
    module, loaded_mtime = entry
    return loaded_mtime != mtime or _reload_required(module, resource)


def _load(path, mtime, reloading, resource=None):
    """The script's module, executed again when reloading is on and the
    file's modification time has changed (or its reload_required() asks)."""
    entry = _scripts.get(path)
    if entry is not None and not (reloading and _stale(entry, mtime, resource)):
        return entry[0]
    with _scripts_lock:
        latest = _scripts.get(path)
        if latest is not None and latest is not entry and (not reloading or latest[1] == mtime):
            # Another thread loaded it meanwhile.
            return latest[0]
        name = '_mod_wsgi_' + hashlib.md5(path.encode('utf-8', 'surrogateescape')).hexdigest()
        module = types.ModuleType(name)
        module.__file__ = path
        module.__mtime__ = mtime
        with open(path, 'rb') as f:
            code = compile(f.read(), path, 'exec', dont_inherit=True)
        sys.modules[name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            _scripts.pop(path, None)
            raise
        _scripts[path] = (module, mtime)
        return module


def call_script(path, mtime, name, args):
    """Calls function `name` of an auth or access script (reloaded when it
    changes), for WSGIAuthUserScript, WSGIAuthGroupScript, WSGIAccessScript."""
    module = _load(path, mtime, True)
    try:
        function = getattr(module, name)
    except AttributeError:
        raise LookupError('script %r does not define %s()' % (path, name)) from None
    return function(*args)


def dispatch(path, mtime, reloading, environ):
    """WSGIDispatchScript: what the script's process_group(environ),
    application_group(environ) and callable_object(environ) return, in that
    order; None where it defines no such function or the function returns
    None. Each answer must be a str of Latin-1 characters (or bytes)."""
    module = _load(path, mtime, reloading)
    answers = []
    for name in ('process_group', 'application_group', 'callable_object'):
        function = getattr(module, name, None)
        answer = None if function is None else function(environ)
        if isinstance(answer, bytes):
            answer = answer.decode('latin-1')
        elif answer is not None:
            if not isinstance(answer, str):
                raise TypeError('%s() of WSGI dispatch script %r must return a str or None, '
                                'not %s' % (name, path, type(answer).__name__))
            try:
                answer.encode('latin-1')
            except UnicodeEncodeError:
                raise TypeError('%s() of WSGI dispatch script %r returned %r, which has '
                                'characters outside Latin-1' % (name, path, answer)) from None
        answers.append(answer)
    return tuple(answers)


def loaded(path):
    return path in _scripts


def needs_reload(path, mtime, resource=None):
    entry = _scripts.get(path)
    return entry is not None and _stale(entry, mtime, resource)


class CallableNotFound(LookupError):
    """The script has no callable of the configured name: a 404, as in mod_wsgi."""


def handle(path, mtime, reloading, callable_name, environ):
    module = _load(path, mtime, reloading, environ.get('SCRIPT_FILENAME'))
    try:
        application = getattr(module, callable_name)
    except AttributeError:
        raise CallableNotFound('WSGI script %r does not contain a WSGI application %r '
                               '(see WSGICallableObject)' % (path, callable_name)) from None
    environ['mod_wsgi.application_start'] = time.time()
    if _event_callbacks:
        return _respond_with_events(application, environ)
    _respond(application, environ, start_response)


def _respond(application, environ, start):
    try:
        result = application(environ, start)
        try:
            if type(result) is list and len(result) == 1:
                # The common single-chunk response: body and end in one go.
                _write_final(result[0])
            elif not isinstance(result, FileWrapper) or not _send_file(result):
                for data in result:
                    _write(data)
                _finish()
            else:
                _finish()
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                close()
    finally:
        _flush_error_logs()


# The mod_wsgi module's event API: callbacks and per-request data.
_event_callbacks = []
_shutdown_callbacks = []
_request = threading.local()


def subscribe_events(callback):
    _event_callbacks.append(callback)
    return callback


def subscribe_shutdown(callback):
    _shutdown_callbacks.append(callback)
    return callback


def request_data():
    data = getattr(_request, 'data', None)
    if data is None:
        raise RuntimeError('mod_wsgi.request_data() called outside of a request')
    return data


def _publish(callbacks, name, event):
    """Calls each subscriber as callback(name, **event); a dict returned is
    merged into the event the later subscribers see. A failing subscriber
    is logged and skipped."""
    for callback in list(callbacks):
        try:
            result = callback(name, **event)
        except Exception:
            _log('Exception in the %r event subscriber %r:' % (name, callback))
            for line in traceback.format_exc().rstrip('\n').split('\n'):
                _log(line)
            continue
        if isinstance(result, dict):
            event.update(result)
    return event


def _respond_with_events(application, environ):
    data = _request.data = {}
    common = {'request_data': data, 'thread_id': environ.get('mod_wsgi.thread_id'),
              'server_pid': os.getpid(), 'request_start': environ.get('mod_wsgi.request_start')}
    outcome = {'status': None}
    try:
        started = _publish(_event_callbacks, 'request_started', dict(
            common, application_object=application, request_environ=environ,
            application_start=environ['mod_wsgi.application_start']))
        application = started.get('application_object', application)

        def start(status, headers, exc_info=None):
            write = start_response(status, headers, exc_info)
            outcome['status'] = status
            _publish(_event_callbacks, 'response_started', dict(
                response_status=status, response_headers=headers,
                exception_info=exc_info, request_data=data))
            return write

        try:
            _respond(application, environ, start)
        except BaseException:
            _publish(_event_callbacks, 'request_exception', dict(
                exception_info=sys.exc_info(), request_data=data))
            raise
        finally:
            finish = time.time()
            _publish(_event_callbacks, 'request_finished', dict(
                common, status=outcome['status'], application_finish=finish,
                application_time=finish - environ['mod_wsgi.application_start']))
    finally:
        _request.data = None


def process_stopping(reason):
    _publish(_shutdown_callbacks, 'process_stopping', {'shutdown_reason': reason})


def log_exception(exc, path):
    """Writes an app's exception to the error log: a line naming the script,
    then the traceback (without the adapter's own frames), one entry per
    line. Returns the HTTP status to answer with if nothing was sent yet."""
    if isinstance(exc, CallableNotFound):
        _log(str(exc))
        return 404
    _log('Exception occurred processing WSGI script %r.' % path)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get('__name__') == __name__:
        tb = tb.tb_next
    for chunk in traceback.format_exception(type(exc), exc, tb):
        for line in chunk.rstrip('\n').split('\n'):
            _log(line)
    return 500


def _restrict_signals():
    """Apache owns this process's signals: an application that installs a
    handler would break its shutdown and restarts. signal.signal() is
    refused with a logged warning and stack (WSGIRestrictSignal Off allows it)."""
    import signal

    def refuse(signum, handler):
        _log('signal.signal(%r, %r) ignored: Apache owns the signals of this '
             'process (see WSGIRestrictSignal)' % (signum, handler))
        for line in ''.join(traceback.format_stack()[:-1]).rstrip('\n').split('\n'):
            _log(line)
        return signal.getsignal(signum)

    signal.signal = refuse


def _installed_package_path():
    """The __path__ of a mod_wsgi package installed from the package index
    (mod_wsgi-express), so that its subpackages (mod_wsgi.express, which the
    handler scripts express generates import) still import once our module
    takes the name. None when there is none."""
    try:
        import mod_wsgi as package
    except ModuleNotFoundError:
        return None
    except Exception:
        _log('Exception importing the installed mod_wsgi package; its subpackages '
             'will not be importable:')
        for line in traceback.format_exc().rstrip('\n').split('\n'):
            _log(line)
        return None
    return getattr(package, '__path__', None)


# What extension modules say when they refuse an interpreter: CPython's
# check for isolated interpreters (3.12+), PyO3's and NumPy's.
_REFUSALS = ('subinterpreter', 'sub-interpreter', 'once per interpreter process',
             'more than once per process')

# Modules built with Rust's PyO3 keep type objects and other state per
# process, so interpreters cannot share them, yet PyO3 0.28 and later no
# longer stops a second interpreter from loading one. Their binaries carry
# these strings (PyO3's panic guard, its source paths).
_PYO3_MARKERS = (b'uncaught panic at ffi boundary', b'/pyo3-')


def _built_with_pyo3(path):
    tail = b''
    try:
        with open(path, 'rb') as f:
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    return False
                data = tail + chunk
                if any(marker in data for marker in _PYO3_MARKERS):
                    return True
                tail = data[-64:]
    except OSError:
        return False


def _guard_extension_modules(group):
    """Extension modules that cannot run in this interpreter: in a
    sub-interpreter, one built with PyO3 is refused before it loads; one
    that refuses the interpreter itself (NumPy, anything single-phase in an
    interpreter with its own GIL) raises as it does. Either way the
    application gets the ImportError and the error log one line (once per
    module) naming the fix."""
    from importlib.machinery import ExtensionFileLoader
    create_module = ExtensionFileLoader.create_module
    exec_module = ExtensionFileLoader.exec_module
    explained = set()
    if group:
        where = 'application group %r (a sub-interpreter)' % group
        fix = ('it works only in the main interpreter: run this application with '
               'WSGIApplicationGroup %{GLOBAL}')
    else:
        where = 'the main interpreter'
        fix = ('a sub-interpreter loaded it first: run every application that uses it '
               'with WSGIApplicationGroup %{GLOBAL}')

    def explain(name):
        if name not in explained:
            explained.add(name)
            _log('Python extension module %r cannot be loaded in %s; %s' % (name, where, fix))

    def explaining(load, name, *args):
        try:
            return load(*args)
        except ImportError as e:
            reason = str(e).lower()
            if any(r in reason for r in _REFUSALS):
                explain(name)
            raise

    def create(self, spec):
        if group and _built_with_pyo3(self.path):
            explain(spec.name)
            raise ImportError('%s is built with PyO3, whose modules cannot be shared by Python '
                              'interpreters; %s' % (spec.name, fix), name=spec.name, path=self.path)
        return explaining(create_module, spec.name, self, spec)

    def execute(self, module):
        return explaining(exec_module, module.__name__, self, module)

    ExtensionFileLoader.create_module = create
    ExtensionFileLoader.exec_module = execute


def finish_threads():
    """At shutdown: waits for the threads the application started (not
    daemon threads), as ending the interpreter would."""
    threading._shutdown()


def run_atexit():
    """At shutdown, where the interpreter cannot be ended: its atexit functions."""
    import atexit
    atexit._run_exitfuncs()


def setup(settings):
    """Prepares this interpreter (that of one application group): streams,
    sys.path, the mod_wsgi and apache modules. Returns the environ entries that are the same for every request
    (wsgi.input holds no state and takes no attributes, so one serves all;
    wsgi.errors is made per request)."""
    sys.argv = ['mod_wsgi']
    sys.stderr = ErrorLog('<wsgi.errors>')
    if settings['restrict_stdout']:
        sys.stdout = Restricted('sys.stdout', 'WSGIRestrictStdout')
    else:
        sys.stdout = ErrorLog('<stdout>')
    if settings['restrict_stdin']:
        sys.stdin = Restricted('sys.stdin', 'WSGIRestrictStdin')

    if settings['restrict_signal']:
        _restrict_signals()

    if settings['switch_interval'] is not None:
        sys.setswitchinterval(settings['switch_interval'])
    if settings['python_eggs'] is not None:
        os.environ['PYTHON_EGG_CACHE'] = settings['python_eggs']

    if settings['python_path']:
        import site
        before = list(sys.path)
        for directory in settings['python_path']:
            site.addsitedir(directory)
        added = [p for p in sys.path if p not in before]
        sys.path[:] = added + [p for p in sys.path if p not in added]

    _guard_extension_modules(settings['application_group'])

    mod_wsgi = types.ModuleType('mod_wsgi')
    mod_wsgi.application_group = settings['application_group']
    package_path = _installed_package_path()
    if package_path is not None:
        mod_wsgi.__path__ = package_path
    mod_wsgi.version = settings['version']
    mod_wsgi.process_group = settings['process_group']
    mod_wsgi.maximum_processes = settings['maximum_processes']
    mod_wsgi.threads_per_process = settings['threads_per_process']
    mod_wsgi.FileWrapper = FileWrapper
    mod_wsgi.subscribe_events = subscribe_events
    mod_wsgi.subscribe_shutdown = subscribe_shutdown
    mod_wsgi.request_data = request_data
    mod_wsgi.event_callbacks = _event_callbacks
    mod_wsgi.shutdown_callbacks = _shutdown_callbacks
    sys.modules['mod_wsgi'] = mod_wsgi

    apache = types.ModuleType('apache')
    apache.version = settings['apache_version']
    apache.description = settings['description']
    apache.mpm_name = settings['mpm_name']
    apache.maximum_processes = settings['maximum_processes']
    apache.threads_per_process = settings['threads_per_process']
    sys.modules['apache'] = apache

    return {
        'wsgi.version': (1, 0),
        'wsgi.multithread': settings['threads_per_process'] > 1,
        'wsgi.multiprocess': settings['maximum_processes'] > 1,
        'wsgi.run_once': settings['run_once'],
        'wsgi.input': Input(),
        'wsgi.input_terminated': True,
        'wsgi.file_wrapper': FileWrapper,
        'mod_wsgi.version': settings['version'],
        'apache.version': settings['apache_version'],
        'mod_wsgi.process_group': settings['process_group'],
        'mod_wsgi.queue_start': 0.0,
        'mod_wsgi.daemon_start': 0.0,
    }
