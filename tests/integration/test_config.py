"""``apache2 -t``: a valid configuration passes, bad directive values fail
with a message naming the directive."""
import pytest

from harness import Apache

VALID = r"""
WSGIPythonOptimize 0
WSGIPythonHashSeed 12345
WSGIDontWriteBytecode Off
WSGIPythonWarnings ignore::DeprecationWarning
WSGIPythonWarnings default::ResourceWarning
WSGIPythonPath {apps}/lib1:{apps}/lib2
WSGIRestrictStdin Off
WSGIRestrictStdout Off
WSGIRestrictEmbedded Off
WSGIScriptAlias /app {apps}/environ.wsgi
WSGIScriptAlias /opt {apps}/environ.wsgi application-group=%{GLOBAL} callable-object=application pass-authorization=On
WSGIScriptAlias /scripts/ {apps}/dir/
WSGIScriptAliasMatch ^/m/([^/]+) {apps}/dir/$1.wsgi
WSGICallableObject application
WSGIApplicationGroup %{GLOBAL}
WSGIPassAuthorization Off
WSGIChunkedRequest Off
WSGIMapHEADToGET Auto
WSGIErrorOverride Off
WSGIScriptReloading On
<Location /app>
    WSGIApplicationGroup %{SERVER}
    WSGIMapHEADToGET on
    WSGIChunkedRequest ON
    WSGIPassAuthorization on
    WSGIScriptReloading off
    WSGIErrorOverride On
    WSGICallableObject application
</Location>
<Location /x1>
    WSGIApplicationGroup %{HOST}
</Location>
<Location /x2>
    WSGIApplicationGroup %{RESOURCE}
</Location>
<Location /x3>
    WSGIApplicationGroup %{ENV:SOME_VAR}
</Location>
<Location /x4>
    WSGIApplicationGroup some-literal-name
</Location>
<Directory {apps}/handler>
    Options +ExecCGI
    AddHandler wsgi-script .wsgi
</Directory>
"""


def config_test(snippet, **kw):
    a = Apache('event', snippet, name='cfg', **kw)
    try:
        return a.config_test()
    finally:
        a.cleanup()


@pytest.mark.parametrize('mpm', ['event', 'worker', 'prefork'])
def test_valid_config_passes(mpm):
    a = Apache(mpm, VALID, name='cfg')
    try:
        rc, out = a.config_test()
    finally:
        a.cleanup()
    assert rc == 0, out
    assert 'Syntax OK' in out


def test_python_hash_seed_random_and_bounds_accepted():
    for value in ('random', '0', '4294967295'):
        rc, out = config_test('WSGIPythonHashSeed %s\n' % value)
        assert rc == 0, (value, out)


@pytest.mark.parametrize('value', ['0', '1', '2'])
def test_python_optimize_levels_accepted(value):
    rc, out = config_test('WSGIPythonOptimize %s\n' % value)
    assert rc == 0, out


BAD = [
    ('WSGIPythonOptimize', 'WSGIPythonOptimize 3'),
    ('WSGIPythonOptimize', 'WSGIPythonOptimize -1'),
    ('WSGIPythonOptimize', 'WSGIPythonOptimize high'),
    ('WSGIPythonHashSeed', 'WSGIPythonHashSeed abc'),
    ('WSGIPythonHashSeed', 'WSGIPythonHashSeed -1'),
    ('WSGIPythonHashSeed', 'WSGIPythonHashSeed 4294967296'),
    ('WSGIChunkedRequest', 'WSGIChunkedRequest maybe'),
    ('WSGIMapHEADToGET', 'WSGIMapHEADToGET sometimes'),
    ('WSGIPassAuthorization', 'WSGIPassAuthorization yes'),
    ('WSGIScriptReloading', 'WSGIScriptReloading 2'),
    ('WSGIErrorOverride', 'WSGIErrorOverride perhaps'),
    ('WSGIDontWriteBytecode', 'WSGIDontWriteBytecode sure'),
    ('WSGIRestrictEmbedded', 'WSGIRestrictEmbedded enabled'),
    ('WSGIRestrictStdin', 'WSGIRestrictStdin 1'),
    ('WSGIRestrictStdout', 'WSGIRestrictStdout 0'),
    ('WSGIScriptAlias', 'WSGIScriptAlias /only-one-arg'),
    ('WSGIScriptAlias', 'WSGIScriptAlias /x {apps}/environ.wsgi bogus-option=1'),
    ('WSGIScriptAlias', 'WSGIScriptAlias /x {apps}/environ.wsgi application-group'),
    ('WSGIScriptAliasMatch', 'WSGIScriptAliasMatch ^/(unclosed {apps}/environ.wsgi'),
    ('WSGIScriptAliasMatch', 'WSGIScriptAliasMatch ^/m'),
    ('WSGICallableObject', 'WSGICallableObject'),
    ('WSGIApplicationGroup', 'WSGIApplicationGroup'),
    ('WSGIPythonHome', 'WSGIPythonHome'),
    # Context errors: server-config-only directives inside sections,
    # server/vhost-only directives inside <Location>.
    ('WSGIPythonOptimize', '<Location /x>\nWSGIPythonOptimize 1\n</Location>'),
    ('WSGIRestrictEmbedded', '<Directory /tmp>\nWSGIRestrictEmbedded On\n</Directory>'),
    ('WSGIScriptAlias', '<Location /x>\nWSGIScriptAlias /x {apps}/environ.wsgi\n</Location>'),
    # Quoting: an unclosed quote, a quoted whole option, an empty quoted value.
    ('WSGIDaemonProcess', "WSGIDaemonProcess g home='/unclosed threads=1"),
    ('WSGIScriptAlias', "WSGIScriptAlias /x {apps}/environ.wsgi 'process-group=x'"),
    ('WSGIScriptAlias', "WSGIScriptAlias /x {apps}/environ.wsgi application-group=''"),
    ('WSGIImportScript', 'WSGIImportScript {apps}/environ.wsgi application-group="%{GLOBAL}"'),
    ('WSGIAuthUserScript', "<Location /x>\nWSGIAuthUserScript '{apps}/auth.wsgi' process-group=x\n</Location>"),
    ('WSGIDaemonProcess', 'WSGIDaemonProcess g stack-size=0'),
    ('WSGIDaemonProcess', 'WSGIDaemonProcess g send-buffer-size=100'),
]


@pytest.mark.parametrize('directive,snippet', BAD, ids=[s.replace('\n', ' ').replace('{apps}/', '')
                                                       for _, s in BAD])
def test_bad_directive_value_fails_config_test(directive, snippet):
    rc, out = config_test(snippet + '\n')
    assert rc != 0, out
    # Refused by our check, which names the directive, not as unknown.
    assert directive in out and 'Invalid command' not in out, out

