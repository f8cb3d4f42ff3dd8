"""Directive arguments and options in every form mod_wsgi accepts: quoted
values (with spaces, empty), quoted arguments and continuation lines, in
both modes; and the mod_wsgi 6 directives we only parse for now, which
start the server with one warning each."""
import os
import urllib.parse

import pytest

import daemon_util as du

GROUP = 'quoted:grp'
HOME = 'my home'

QUOTED = r"""
WSGIDaemonProcess '%(group)s' \
    display-name='(wsgi:%(group)s) two words' \
    home="{root}/%(home)s" \
    python-path='' python-eggs='' \
    lang='C.UTF-8' \
    locale="C.UTF-8" \
    threads=2
WSGIScriptAlias '/daemon app' "{apps}/process_facts.wsgi" \
    process-group='%(group)s' application-group='%%{GLOBAL}'
WSGIScriptAlias "/embedded" '{apps}/process_facts.wsgi' application-group="%%{GLOBAL}" \
    callable-object='application' pass-authorization='On'
WSGIImportScript '{apps}/import_marker.wsgi' process-group='%(group)s' application-group="%%{GLOBAL}"
""" % {'group': GROUP, 'home': HOME}


def make_home(apache):
    os.mkdir(os.path.join(apache.root, HOME), 0o755)


quoted = du.daemon_fixture(QUOTED, 'quoted', {GROUP: 1}, mpms=['event', 'prefork'],
                           pre_start=make_home)


def test_quoted_daemon_options(quoted):
    data = du.get_json(quoted, '/' + urllib.parse.quote('daemon app'))
    assert data['process_group'] == GROUP
    assert data['pid'] in du.daemon_pids(quoted, GROUP)
    assert data['cwd'] == os.path.join(quoted.root, HOME)
    assert data['title'] == '(wsgi:%s) two words' % GROUP
    assert (data['lang'], data['lc_all']) == ('C.UTF-8', 'C.UTF-8')
    assert data['application_group'] == ''
    assert data['script_name'] == '/daemon app'


def test_quoted_embedded_alias(quoted):
    data = du.get_json(quoted, '/embedded/x')
    assert data['process_group'] == ''
    assert data['pid'] in quoted.child_pids()
    assert data['script_name'] == '/embedded'


def test_quoted_import_script_ran_in_daemon(quoted):
    data = du.get_json(quoted, '/' + urllib.parse.quote('daemon app'))
    assert data['imported_pid'] == data['pid']


PARSE_ONLY = r"""
WSGIPerInterpreterGIL On
WSGIFreeThreading Off
<WSGIInterpreterOptions process-group=%{GLOBAL} application-group=app1>
    WSGIPerInterpreterGIL On
</WSGIInterpreterOptions>
<WSGIInterpreterOptions>
    WSGISwitchInterval 0.002
    WSGIPythonPath {apps}/not-applied
    WSGIRestrictStdin On
    WSGIRestrictStdout On
    WSGIRestrictSignal Off
</WSGIInterpreterOptions>
WSGIServerMetrics On
WSGITelemetryService "unix:{root}/telemetry.sock" interval=2
WSGISlowRequests 2.0
WSGITelemetryOptions +CaptureUserAgent
WSGIAcceptMutex default
WSGICaseSensitivity On
WSGIVerboseDebugging 'Off'
WSGIScriptAlias /facts {apps}/process_facts.wsgi
<Location /facts>
    WSGIPassApacheRequest On
    WSGIGroupAuthoritative Off
</Location>
"""

# One warning each, naming the directive and what would honour it.
WARNINGS = [
    'WSGIPerInterpreterGIL On has no effect: a GIL per sub-interpreter (PEP 684) needs Python 3.12 or later',
    '<WSGIInterpreterOptions> is accepted, but the settings inside it are not applied yet',
    'WSGIServerMetrics On is accepted, but mod_wsgi.server_metrics() is not provided yet',
    'WSGITelemetryService is accepted, but mod_wsgi-rs has no telemetry reporter yet',
    'WSGISlowRequests is accepted, but mod_wsgi-rs has no telemetry reporter yet',
    'WSGITelemetryOptions is accepted, but mod_wsgi-rs has no telemetry reporter yet',
]


@pytest.fixture(scope='module')
def parse_only():
    from harness import Apache
    with Apache('event', PARSE_ONLY, name='parseonly') as a:
        yield a


def test_parse_only_directives_warn_once(parse_only):
    log = parse_only.error_log()
    for warning in WARNINGS:
        assert log.count(warning) == 1, (warning, log[-4000:])
    # Values that ask for nothing we lack are quiet.
    for quiet in ('WSGIFreeThreading', 'WSGIAcceptMutex', 'WSGICaseSensitivity', 'WSGIGroupAuthoritative',
                  'WSGIVerboseDebugging', 'WSGIPassApacheRequest'):
        assert quiet not in log, log[-4000:]


def test_interpreter_options_not_applied(parse_only):
    data = du.get_json(parse_only, '/facts')
    assert os.path.join(parse_only.apps, 'not-applied') not in data['path']
    assert data['switch_interval'] == 0.005
