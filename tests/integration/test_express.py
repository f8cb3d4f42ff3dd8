"""The configs ``mod_wsgi-express setup-server`` (mod_wsgi 6.1.1 from the
package index) generates, with only their ``LoadModule wsgi_module`` line
pointed at our module, pass the generated ``apachectl configtest``.

The first run builds mod_wsgi into a cached venv (see express_util); it needs
the network, and fails loudly rather than skipping when it cannot."""
import pytest

import express_util as ex
import harness

# Directives express writes that we refuse until they are implemented
# (issue 7, "Handlers and dispatch").
NOT_YET = {'WSGIHandlerScript'}


@pytest.fixture(scope='module')
def venv():
    try:
        return ex.ensure_venv()
    except ex.Unavailable as e:
        pytest.fail('cannot install mod_wsgi %s from the package index: %s' % (ex.MOD_WSGI_VERSION, e))


@pytest.fixture(params=[(v, m) for v in ex.VARIANTS for m in ex.MODES],
                ids=lambda p: '%s-%s' % p)
def generated(venv, request):
    variant, mode = request.param
    g = ex.Generated(venv, ex.MODES[mode], ex.VARIANTS[variant])
    try:
        yield g
    finally:
        g.cleanup()


def test_generated_config(generated):
    # mod_wsgi's own module accepts what express generated...
    rc, out = generated.configtest()
    assert rc == 0 and 'Syntax OK' in out, out
    # ...and ours accepts every line of it but those not implemented yet.
    generated.use_module(harness.module_path())
    failures = generated.failing_lines()
    refused = {text.split()[0] if text else message for _, text, message in failures}
    assert refused <= NOT_YET, failures
    for _, text, message in failures:
        assert message.startswith(text.split()[0] + ' is not supported by mod_wsgi-rs'), message


@pytest.mark.xfail(strict=True, reason='WSGIHandlerScript is not implemented yet')
@pytest.mark.parametrize('mode', ex.MODES)
def test_unmodified_config_passes(venv, mode):
    with ex.generated(venv, mode, harness.module_path()) as g:
        rc, out = g.configtest()
    assert rc == 0, out
