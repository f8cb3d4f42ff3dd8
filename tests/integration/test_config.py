"""``apache2 -t``: a valid configuration passes, bad directive values fail
with a message naming the directive."""
import pytest

import harness

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


config_test = harness.config_test


@pytest.mark.parametrize('mpm', harness.MPMS)
def test_valid_config_passes(mpm):
    rc, out = config_test(VALID, mpm=mpm)
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
    # The directives mod_wsgi 6 added, and the rest we only check.
    ('WSGIPerInterpreterGIL', 'WSGIPerInterpreterGIL maybe'),
    ('WSGIFreeThreading', 'WSGIFreeThreading 1'),
    ('<WSGIInterpreterOptions>', '<WSGIInterpreterOptions user=x>\n</WSGIInterpreterOptions>'),
    ('<WSGIInterpreterOptions>', '<WSGIInterpreterOptions process-group=a process-group=b>\n</WSGIInterpreterOptions>'),
    ('WSGIScriptAlias cannot be used inside <WSGIInterpreterOptions>',
     '<WSGIInterpreterOptions>\nWSGIScriptAlias /x {apps}/environ.wsgi\n</WSGIInterpreterOptions>'),
    ('SetEnv cannot be used inside <WSGIInterpreterOptions>',
     '<WSGIInterpreterOptions>\nSetEnv A b\n</WSGIInterpreterOptions>'),
    ('WSGISwitchInterval', '<WSGIInterpreterOptions>\nWSGISwitchInterval 0\n</WSGIInterpreterOptions>'),
    ('<WSGIInterpreterOptions', '<VirtualHost *:{port}>\n<WSGIInterpreterOptions>\n</WSGIInterpreterOptions>\n</VirtualHost>'),
    ('WSGITelemetryService', 'WSGITelemetryService udp:127.0.0.1:9000'),
    ('WSGITelemetryService', 'WSGITelemetryService unix:/run/t.sock interval=0.1'),
    ('WSGITelemetryService', '<VirtualHost *:{port}>\nWSGITelemetryService unix:/run/t.sock\n</VirtualHost>'),
    ('WSGISlowRequests', 'WSGISlowRequests -1'),
    ('WSGITelemetryOptions', 'WSGITelemetryOptions +Bogus'),
    ('WSGITelemetryOptions', 'WSGITelemetryOptions None +CaptureUserAgent'),
    ('WSGIAcceptMutex', 'WSGIAcceptMutex sem'),
    ('WSGIServerMetrics', 'WSGIServerMetrics yes'),
    ('WSGIGroupAuthoritative', '<Location /x>\nWSGIGroupAuthoritative maybe\n</Location>'),
    ('WSGIPassApacheRequest', 'WSGIPassApacheRequest 1'),
    ('WSGICaseSensitivity', 'WSGICaseSensitivity x'),
    ('WSGIHandlerScript', 'WSGIHandlerScript h {apps}/environ.wsgi callable-object=x'),
    ('WSGIDispatchScript', 'WSGIDispatchScript {apps}/environ.wsgi process-group=x'),
]


@pytest.mark.parametrize('directive,snippet', BAD, ids=[s.replace('\n', ' ').replace('{apps}/', '')
                                                       for _, s in BAD])
def test_bad_directive_value_fails_config_test(directive, snippet):
    rc, out = config_test(snippet + '\n')
    assert rc != 0, out
    # Refused by our check, which names the directive, not as unknown.
    assert directive in out and 'Invalid command' not in out, out


# Every directive in mod_wsgi 6.1.1's command table (src/server/mod_wsgi.c),
# each in a valid form.
EVERY_DIRECTIVE = r"""
WSGIScriptAlias /a {apps}/environ.wsgi
WSGIScriptAliasMatch ^/m/(.*) {apps}/dir/$1.wsgi
WSGIDaemonProcess known threads=1
WSGISocketPrefix run/wsgi
WSGISocketRotation On
WSGIAcceptMutex posixsem
WSGIVerboseDebugging Off
WSGIDontWriteBytecode Off
WSGIPythonWarnings ignore
WSGIPythonOptimize 0
WSGIPythonHome /usr
WSGIPythonPath {apps}
WSGIPythonEggs /tmp
WSGIPythonHashSeed random
WSGISwitchInterval 0.005
WSGIDestroyInterpreter On
WSGIPerInterpreterGIL Off
WSGIFreeThreading Off
<WSGIInterpreterOptions process-group=known>
    WSGIPerInterpreterGIL On
</WSGIInterpreterOptions>
WSGIRestrictEmbedded Off
WSGIRestrictStdin On
WSGIRestrictStdout On
WSGIRestrictSignal On
WSGICaseSensitivity On
WSGIRestrictProcess known %{GLOBAL}
WSGIProcessGroup %{GLOBAL}
WSGIApplicationGroup %{GLOBAL}
WSGICallableObject application
WSGIImportScript {apps}/import_marker.wsgi process-group=known application-group=%{GLOBAL}
WSGIPassApacheRequest Off
WSGIPassAuthorization Off
WSGIScriptReloading On
WSGIErrorOverride Off
WSGIChunkedRequest Off
WSGIMapHEADToGET Auto
WSGIIgnoreActivity Off
WSGITrustedProxyHeaders X-Forwarded-For
WSGITrustedProxies 127.0.0.1
WSGIEnableSendfile Off
<Location /auth>
    WSGIAccessScript {apps}/auth.wsgi
    WSGIAuthUserScript {apps}/auth.wsgi
    WSGIAuthGroupScript {apps}/auth.wsgi
    WSGIGroupAuthoritative On
</Location>
WSGIServerMetrics Off
WSGITelemetryService unix:/run/telemetry.sock
WSGISlowRequests 1
WSGITelemetryOptions None
WSGIHandlerScript wsgi-handler {apps}/environ.wsgi process-group=%{GLOBAL}
WSGIDispatchScript {apps}/environ.wsgi
"""

MOD_WSGI_6_DIRECTIVES = {
    'WSGIScriptAlias', 'WSGIScriptAliasMatch', 'WSGIDaemonProcess', 'WSGISocketPrefix',
    'WSGISocketRotation', 'WSGIAcceptMutex', 'WSGIVerboseDebugging', 'WSGIDontWriteBytecode',
    'WSGIPythonWarnings', 'WSGIPythonOptimize', 'WSGIPythonHome', 'WSGIPythonPath',
    'WSGIPythonEggs', 'WSGIPythonHashSeed', 'WSGISwitchInterval', 'WSGIDestroyInterpreter',
    'WSGIPerInterpreterGIL', 'WSGIFreeThreading', '<WSGIInterpreterOptions',
    'WSGIRestrictEmbedded', 'WSGIRestrictStdin', 'WSGIRestrictStdout', 'WSGIRestrictSignal',
    'WSGICaseSensitivity', 'WSGIRestrictProcess', 'WSGIProcessGroup', 'WSGIApplicationGroup',
    'WSGICallableObject', 'WSGIImportScript', 'WSGIDispatchScript', 'WSGIPassApacheRequest',
    'WSGIPassAuthorization', 'WSGIScriptReloading', 'WSGIErrorOverride', 'WSGIChunkedRequest',
    'WSGIMapHEADToGET', 'WSGIIgnoreActivity', 'WSGITrustedProxyHeaders', 'WSGITrustedProxies',
    'WSGIEnableSendfile', 'WSGIAccessScript', 'WSGIAuthUserScript', 'WSGIAuthGroupScript',
    'WSGIGroupAuthoritative', 'WSGIHandlerScript', 'WSGIServerMetrics', 'WSGITelemetryService',
    'WSGISlowRequests', 'WSGITelemetryOptions',
}


def test_every_mod_wsgi_directive_is_known():
    written = {line.split()[0].rstrip('>') for line in EVERY_DIRECTIVE.splitlines()
               if line.strip().startswith(('WSGI', '<WSGI'))}
    assert written == MOD_WSGI_6_DIRECTIVES
    rc, out = config_test(EVERY_DIRECTIVE)
    assert rc == 0 and 'Syntax OK' in out, out
