"""WSGIRestrictStdin, WSGIRestrictStdout and WSGIRestrictEmbedded."""
import harness

APPS = r"""
WSGIScriptAlias /stdio {apps}/stdio.wsgi
WSGIScriptAlias /env {apps}/environ.wsgi
WSGIScriptAlias /adapter {apps}/adapter.wsgi
"""


restricted = harness.server_fixture('WSGIRestrictStdin On\nWSGIRestrictStdout On\n' + APPS,
                                    'restricted')
unrestricted = harness.server_fixture('WSGIRestrictStdin Off\nWSGIRestrictStdout Off\n' + APPS,
                                      'unrestricted')
no_embedded = harness.server_fixture('WSGIRestrictEmbedded On\n' + APPS, 'noembedded')


def op(server, name, token=''):
    return harness.get_json(server, '/stdio?op=%s&token=%s' % (name, token))


def test_restrict_stdin(restricted):
    out = op(restricted, 'stdin')
    assert out['ok'] is False
    assert out['oserror'] is True, out


def test_restrict_stdout(restricted, token):
    off = restricted.log_size()
    out = op(restricted, 'stdout', token)
    assert out['ok'] is False
    assert out['oserror'] is True, out
    # stderr still reaches the log, and it is written after the attempt.
    out = op(restricted, 'stderr', token)
    assert out['ok'] is True
    text = restricted.wait_for_log('mwrs-stderr-' + token, off)
    assert text is not None
    assert 'mwrs-stdout-' + token not in text


def test_stdout_unrestricted_goes_to_error_log(unrestricted, token):
    off = unrestricted.log_size()
    out = op(unrestricted, 'stdout', token)
    assert out['ok'] is True, out
    text = unrestricted.wait_for_log('mwrs-stdout-' + token, off)
    assert text is not None
    line = [l for l in text.splitlines() if 'mwrs-stdout-' + token in l]
    assert len(line) == 1
    assert line[0].endswith('mwrs-stdout-' + token), line


def test_unrestricted_wsgi_app_works(unrestricted):
    r = unrestricted.get('/adapter?case=ok')
    assert r.status == 200 and r.body == b'ok'


def test_restrict_embedded_gives_500(no_embedded):
    for path in ('/env', '/adapter?case=ok', '/stdio?op=stderr'):
        r = no_embedded.get(path)
        assert r.status == 500, (path, r.raw[:500])
        assert b'"environ"' not in r.raw and b'ok' != r.body


def test_restrict_embedded_server_still_serves_static(no_embedded):
    r = no_embedded.get('/ready.txt')
    assert r.status == 200 and r.body == b'ready\n'
