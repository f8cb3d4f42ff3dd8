"""WSGIHandlerScript (named handlers for SetHandler/AddHandler),
WSGIDispatchScript (process_group(), application_group() and
callable_object() per request) and WSGIPassApacheRequest (the
apache.request_rec capsule), in embedded and daemon mode.

One Apache child with one thread, so that every embedded request meets the
same Python (the capsule a request kept is looked at by the next one)."""
import json
import os

import pytest

import daemon_util as du

CONFIG = r"""
SetEnv MWRS_STATE {state}
SetEnv MWRS_CALLABLE other
WSGIDaemonProcess hd threads=2 display-name=%{GROUP}
WSGIDaemonProcess dd threads=2 display-name=%{GROUP}
WSGIDaemonProcess elsewhere threads=1 display-name=%{GROUP}
# Never used by handler scripts, which always call handle_request().
WSGICallableObject application

WSGIHandlerScript report {apps}/handlerscript/handler.wsgi
WSGIHandlerScript report-daemon {apps}/handlerscript/handler.wsgi process-group=hd application-group=%{GLOBAL}
WSGIHandlerScript report-auth '{apps}/handlerscript/handler.wsgi' pass-authorization=On application-group=auth-group
WSGIHandlerScript missing {apps}/handlerscript/no-such-script.wsgi
WSGIHandlerScript no-handle-request {apps}/environ.wsgi

Alias /files {apps}/handlerscript/files
<Directory {apps}/handlerscript/files>
    AddHandler report .rep
</Directory>
Alias /strict {apps}/handlerscript/strict
<Directory {apps}/handlerscript/strict>
    AddHandler report .rep
    AcceptPathInfo Off
</Directory>
<Location /virtual>
    SetHandler report
</Location>
<Location /daemon>
    SetHandler report-daemon
</Location>
<Location /auth>
    SetHandler report-auth
</Location>
<Location /missing>
    SetHandler missing
</Location>
<Location /no-handle-request>
    SetHandler no-handle-request
</Location>
<Location /unregistered>
    SetHandler not-a-wsgi-handler
</Location>
<Location /redefined>
    WSGIHandlerScript report {apps}/handlerscript/other.wsgi
    SetHandler report
</Location>

WSGIScriptAlias /dispatched {apps}/dispatch/app.wsgi
<Location /dispatched>
    WSGIDispatchScript {apps}/dispatch/dispatch.py application-group=dispatcher
    WSGIRestrictProcess %{GLOBAL} dd
    WSGIPassApacheRequest On
</Location>
WSGIScriptAlias /dispatched-default {apps}/dispatch/app.wsgi
<Location /dispatched-default>
    WSGIDispatchScript {apps}/dispatch/dispatch.py
</Location>

WSGIScriptAlias /capsule {apps}/capsule.wsgi
<Location /capsule>
    WSGIPassApacheRequest On
</Location>
WSGIScriptAlias /capsule-daemon {apps}/capsule.wsgi process-group=dd application-group=%{GLOBAL}
<Location /capsule-daemon>
    WSGIPassApacheRequest On
</Location>
WSGIScriptAlias /no-capsule {apps}/capsule.wsgi
WSGIScriptAlias /capsule-access {apps}/capsule.wsgi
<Location /capsule-access>
    WSGIAccessScript {apps}/capsule_access.wsgi
    WSGIPassApacheRequest On
</Location>
WSGIScriptAlias /capsule-no-access {apps}/capsule.wsgi
<Location /capsule-no-access>
    WSGIAccessScript {apps}/capsule_access.wsgi
</Location>
"""


CONFIG_RESTRICTED = r"""
WSGIRestrictEmbedded On
WSGIDaemonProcess rd threads=1 display-name=%{GROUP}
WSGIScriptAlias /dispatched {apps}/dispatch/app.wsgi process-group=rd application-group=%{GLOBAL}
WSGIDispatchScript {apps}/dispatch/dispatch.py
"""


@pytest.fixture(scope='module')
def server():
    with du.running(CONFIG, 'handlers', {'hd': 1, 'dd': 1}, single=True, modules=['mime']) as a:
        yield a


def report(server, path, **kw):
    r = server.get(path, **kw)
    assert r.status == 200, r.raw[:2000]
    return r.json()


# -- WSGIHandlerScript --------------------------------------------------------

def test_addhandler_runs_handle_request_for_an_existing_file(server):
    out = report(server, '/files/doc.rep')
    env = out['environ']
    assert out['script'] == server.apps + '/handlerscript/handler.wsgi'
    # The request's own file, not the handler script, is SCRIPT_FILENAME.
    assert env['SCRIPT_FILENAME'] == server.apps + '/handlerscript/files/doc.rep'
    assert (env['SCRIPT_NAME'], env['PATH_INFO']) == ('/files/doc.rep', '')
    assert env['mod_wsgi.handler_script'] == server.apps + '/handlerscript/handler.wsgi'
    assert env['mod_wsgi.request_handler'] == 'report'
    assert env['mod_wsgi.callable_object'] == 'handle_request'
    assert env['mod_wsgi.process_group'] == ''
    # The directory's application group, %{RESOURCE} by default.
    assert env['mod_wsgi.application_group'] == '127.0.0.1:%d|/files/doc.rep' % server.port


def test_path_info_after_the_file(server):
    env = report(server, '/files/doc.rep/more/path')['environ']
    assert (env['SCRIPT_NAME'], env['PATH_INFO']) == ('/files/doc.rep', '/more/path')


def test_accept_path_info_off_is_404(server):
    assert server.get('/strict/doc.rep').status == 200
    offset = server.log_size()
    assert server.get('/strict/doc.rep/more').status == 404
    assert server.wait_for_log('AcceptPathInfo is off', offset)


def test_sethandler_needs_no_file_and_no_execcgi(server):
    env = report(server, '/virtual/x/y?q=1')['environ']
    assert (env['SCRIPT_NAME'], env['PATH_INFO'], env['QUERY_STRING']) == ('/virtual', '/x/y', 'q=1')
    assert env['SCRIPT_FILENAME'] == server.htdocs + '/virtual'


def test_process_group_option_runs_it_in_the_daemon(server):
    out = report(server, '/daemon/z')
    env = out['environ']
    assert (env['mod_wsgi.process_group'], env['mod_wsgi.application_group']) == ('hd', '')
    assert env['mod_wsgi.handler_script'] == server.apps + '/handlerscript/handler.wsgi'
    assert out['pid'] in du.daemon_pids(server, 'hd')


def test_pass_authorization_and_application_group_options(server):
    headers = {'Authorization': 'Bearer abc'}
    env = report(server, '/auth/', headers=headers)['environ']
    assert env['HTTP_AUTHORIZATION'] == 'Bearer abc'
    assert env['mod_wsgi.application_group'] == 'auth-group'
    assert 'HTTP_AUTHORIZATION' not in report(server, '/virtual/', headers=headers)['environ']


def test_a_section_redefines_a_handler_name(server):
    r = server.get('/redefined/p')
    assert (r.status, r.body) == (200, b'other handler for /p')
    assert report(server, '/virtual/')['script'] == server.apps + '/handlerscript/handler.wsgi'


def test_missing_handler_script_is_500_with_the_reason(server):
    offset = server.log_size()
    assert server.get('/missing/x').status == 500
    assert server.wait_for_log('no-such-script.wsgi', offset)


def test_script_without_handle_request_is_404(server):
    offset = server.log_size()
    assert server.get('/no-handle-request/x').status == 404
    assert server.wait_for_log("does not contain a WSGI application 'handle_request'", offset)


def test_unregistered_handler_name_is_not_ours(server):
    # Apache's default handler answers instead (no such file).
    assert server.get('/unregistered/x').status == 404
    assert server.get('/files/doc.rep', headers={}).status == 200


@pytest.mark.parametrize('path', ['/files/doc.rep', '/daemon/q'])
def test_reload_required_is_asked_about_the_requested_file(server, path):
    # The handler script's reload_required(resource) runs before each
    # request with the request's file; True loads the script afresh (in a
    # daemon: restarts the process).
    first = report(server, path)
    resource = first['environ']['SCRIPT_FILENAME']
    assert report(server, path)['reload_asked'] == resource
    same = report(server, path)
    assert (same['loads'], same['pid']) == (first['loads'], first['pid'])
    marker = resource + '.reload'
    with open(marker, 'w'):
        pass
    try:
        if path.startswith('/daemon'):
            # The daemon restarts; the request that found it is answered
            # by the new process.
            assert report(server, path)['pid'] != first['pid']
        else:
            assert report(server, path)['loads'] > first['loads']
    finally:
        os.unlink(marker)


# -- WSGIDispatchScript -------------------------------------------------------

def dispatched(server, query='', token=None):
    headers = {'X-Token': token} if token else None
    return report(server, '/dispatched/p' + ('?' + query if query else ''), headers=headers)


def test_dispatch_script_answers_none_keeps_the_configuration(server, token):
    out = dispatched(server, token=token)
    assert out['callable'] == 'application'
    assert out['environ']['mod_wsgi.process_group'] == ''
    assert out['environ']['mod_wsgi.application_group'] == '127.0.0.1:%d|/dispatched' % server.port
    with open(server.state_file('dispatch-%s.json' % token)) as f:
        seen = json.load(f)
    # The script sees where it runs itself: its own group, in the Apache
    # child, no callable chosen yet; and the request's environ.
    assert seen['mod_wsgi.process_group'] == ''
    assert seen['mod_wsgi.application_group'] == 'dispatcher'
    assert seen['callable_object_present'] is False
    assert (seen['SCRIPT_NAME'], seen['PATH_INFO'], seen['HTTP_X_TOKEN']) == ('/dispatched', '/p', token)
    assert seen['MWRS_SETENV'] is None


def test_dispatch_script_chooses_the_daemon_group(server):
    out = dispatched(server, 'pg=dd')
    assert out['environ']['mod_wsgi.process_group'] == 'dd'
    assert out['pid'] in du.daemon_pids(server, 'dd')
    assert dispatched(server, 'pg=%25{GLOBAL}')['pid'] not in du.daemon_pids(server)


def test_dispatch_script_chooses_application_group_and_callable(server):
    out = dispatched(server, 'ag=chosen&co=other')
    assert out['callable'] == 'other'
    assert out['environ']['mod_wsgi.application_group'] == 'chosen'
    assert out['environ']['mod_wsgi.callable_object'] == 'other'
    assert dispatched(server, 'ag=%25{GLOBAL}')['environ']['mod_wsgi.application_group'] == ''
    # Expanded as WSGICallableObject's value would be.
    assert dispatched(server, 'co=%25{ENV:MWRS_CALLABLE}')['callable'] == 'other'


def test_dispatch_script_default_group_is_the_main_interpreter(server, token):
    report(server, '/dispatched-default/p', headers={'X-Token': token})
    with open(server.state_file('dispatch-%s.json' % token)) as f:
        assert json.load(f)['mod_wsgi.application_group'] == ''


def test_restrict_process_applies_to_the_dispatched_group(server):
    offset = server.log_size()
    assert server.get('/dispatched/p?pg=elsewhere').status == 500
    assert server.wait_for_log("'elsewhere' is not allowed here by WSGIRestrictProcess", offset)


@pytest.mark.parametrize('query', ['pg=RAISE', 'co=RAISE'])
def test_dispatch_script_failure_is_500_with_a_traceback(server, query):
    offset = server.log_size()
    assert server.get('/dispatched/p?' + query).status == 500
    log = server.wait_for_log('RuntimeError: dispatch failed on purpose', offset)
    assert log and 'Traceback (most recent call last)' in log, server.log_since(offset)
    assert 'dispatch.py", line' in log


def test_dispatch_script_answer_of_the_wrong_type_is_500(server):
    offset = server.log_size()
    assert server.get('/dispatched/p?ag=INT').status == 500
    assert server.wait_for_log('TypeError: application_group() of WSGI dispatch script', offset)


# -- WSGIPassApacheRequest ----------------------------------------------------

def test_request_rec_capsule_is_the_live_request(server):
    out = report(server, '/capsule')
    assert out['present'] and out['type'] == 'PyCapsule'
    # No name, as mod_wsgi makes it: PyCapsule_GetPointer(capsule, NULL).
    assert out['name'] is None
    assert str(out['port_from_request_rec']) == out['server_port']
    assert out['document_root_from_request_rec'] == out['document_root']


def test_request_rec_capsule_does_not_outlive_its_request(server):
    report(server, '/capsule')
    out = report(server, '/capsule')
    assert out['before_valid'] == 0
    assert out['before_pointer'].startswith('ValueError'), out


def test_request_rec_capsule_only_when_on_and_never_in_a_daemon(server):
    assert report(server, '/no-capsule')['present'] is False
    assert report(server, '/capsule-daemon')['present'] is False


def test_dispatch_script_gets_the_capsule_for_its_call_only(server, token):
    out = dispatched(server, token=token)
    assert out['request_rec_present'] is True
    dispatched(server, token=token + 'b')
    with open(server.state_file('dispatch-%sb.json' % token)) as f:
        seen = json.load(f)
    assert seen['request_rec_present'] is True
    assert seen['kept_request_rec_valid'] and not any(seen['kept_request_rec_valid'])


def test_access_script_gets_the_capsule(server):
    assert server.get('/capsule-access').status == 200
    assert server.get('/capsule-no-access').status == 403


def test_dispatch_script_without_python_in_the_children_is_500():
    # WSGIRestrictEmbedded On: Apache's children never start Python, so
    # the dispatch script cannot run there and the request is refused.
    with du.running(CONFIG_RESTRICTED, 'norun', {'rd': 1}) as a:
        offset = a.log_size()
        assert a.get('/dispatched/p').status == 500
        assert a.wait_for_log("Python is not running in Apache's children", offset)
