"""Directive arguments and options in every form mod_wsgi accepts: quoted
values (with spaces, empty), quoted arguments and continuation lines, in
both modes."""
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


@pytest.fixture(scope='module', params=['event', 'prefork'])
def quoted(request):
    with du.running(QUOTED, 'quoted', {GROUP: 1}, mpm=request.param, pre_start=make_home) as a:
        yield a


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

