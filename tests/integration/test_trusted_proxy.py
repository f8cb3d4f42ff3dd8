"""WSGITrustedProxyHeaders and WSGITrustedProxies (embedded mode, event MPM;
and the environ a daemon gets).  The rules follow mod_wsgi 6.0, which
closed CVE-2022-2255 (a spoofed header surviving next to the trusted one):

* For every category with a header listed in WSGITrustedProxyHeaders, all
  synonyms of that category are removed from the environ except the one
  that was applied.  From an untrusted peer all of them are removed and
  nothing is applied.
* The peer is trusted when WSGITrustedProxies is unset, or when REMOTE_ADDR
  is in one of its CIDRs.  Every client of these tests is 127.0.0.1.
* Headers of categories with nothing listed pass through untouched.

Almost every case is a request to one shared instance (``server``); each
<Location /t/MODE/HEADER> lists exactly one header, with the trust mode
MODE (see TRUST_MODES).  All of /t is one WSGIScriptAlias, so SCRIPT_NAME is
'/t' everywhere and PATH_INFO carries the rest.
"""
import os
import shutil

import pytest

import harness
from harness import Apache

CATEGORIES = {
    'client': ['X-Forwarded-For', 'X-Client-IP', 'X-Real-IP'],
    'host': ['X-Forwarded-Host', 'X-Host'],
    'server': ['X-Forwarded-Server'],
    'port': ['X-Forwarded-Port'],
    'script': ['X-Script-Name', 'X-Forwarded-Script-Name'],
    'scheme': ['X-Forwarded-Proto', 'X-Forwarded-Scheme', 'X-Scheme',
               'X-Forwarded-HTTPS', 'X-Forwarded-SSL', 'X-HTTPS'],
}
ALL_HEADERS = [h for hs in CATEGORIES.values() for h in hs]
CATEGORY_OF = {h: c for c, hs in CATEGORIES.items() for h in hs}
STRING_SCHEME = ['X-Forwarded-Proto', 'X-Forwarded-Scheme', 'X-Scheme']
BOOL_SCHEME = ['X-Forwarded-HTTPS', 'X-Forwarded-SSL', 'X-HTTPS']

# The value each header carries when it is meant to take effect (from an
# untrusted peer: the spoof that must not take effect).
VALUE = {
    'X-Forwarded-For': '203.0.113.1',
    'X-Client-IP': '203.0.113.2',
    'X-Real-IP': '203.0.113.3',
    'X-Forwarded-Host': 'fwd-host.example:8001',
    'X-Host': 'x-host.example:8002',
    'X-Forwarded-Server': 'fwd-server.example',
    'X-Forwarded-Port': '8443',
    'X-Script-Name': '/mount-a',
    'X-Forwarded-Script-Name': '/mount-b',
    'X-Forwarded-Proto': 'https',
    'X-Forwarded-Scheme': 'https',
    'X-Scheme': 'https',
    'X-Forwarded-HTTPS': 'On',
    'X-Forwarded-SSL': 'On',
    'X-HTTPS': 'On',
}
# Conflicting values sent in the synonyms that are not listed: if one of
# them were applied, the result would show it.
DECOY = {
    'X-Forwarded-For': '198.51.100.1',
    'X-Client-IP': '198.51.100.2',
    'X-Real-IP': '198.51.100.3',
    'X-Forwarded-Host': 'decoy-fwd-host.example',
    'X-Host': 'decoy-x-host.example',
    'X-Forwarded-Server': 'decoy-server.example',
    'X-Forwarded-Port': '9999',
    'X-Script-Name': '/decoy-a',
    'X-Forwarded-Script-Name': '/decoy-b',
    'X-Forwarded-Proto': 'http',
    'X-Forwarded-Scheme': 'http',
    'X-Scheme': 'http',
    'X-Forwarded-HTTPS': 'Off',
    'X-Forwarded-SSL': 'Off',
    'X-HTTPS': 'Off',
}

# Trust modes, each a <Location /t/MODE/HEADER> per header.
TRUST_MODES = {
    'any': None,                                   # no WSGITrustedProxies
    'ip': '10.0.0.0/8 127.0.0.1',                 # exact IP, second entry
    'cidr': '127.0.0.0/8',                         # CIDR
}
UNTRUST_MODES = {
    'single': '10.1.2.3',
    'multi': '10.0.0.0/8 192.168.0.0/16',
}


def env_key(header):
    return 'HTTP_' + header.upper().replace('-', '_')


def slug(header):
    return header.lower()


def _locations():
    out = []
    for mode, proxies in list(TRUST_MODES.items()) + list(UNTRUST_MODES.items()):
        for h in ALL_HEADERS:
            out.append('<Location /t/%s/%s>' % (mode, slug(h)))
            out.append('    WSGITrustedProxyHeaders %s' % h)
            if proxies:
                out.append('    WSGITrustedProxies %s' % proxies)
            out.append('</Location>')
    return '\n'.join(out)


CONFIG = r"""
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /t {apps}/environ.wsgi

# Nothing configured.
# /t/none

# Proxies but no headers: nothing to do.
<Location /t/proxies-only>
    WSGITrustedProxies 10.1.2.3
</Location>

# Every header listed (in two directives), untrusted peer.
<Location /t/untrust-all>
    WSGITrustedProxyHeaders X-Forwarded-For X-Client-IP X-Real-IP X-Forwarded-Host X-Host
    WSGITrustedProxyHeaders X-Forwarded-Server X-Forwarded-Port X-Script-Name X-Forwarded-Script-Name X-Forwarded-Proto X-Forwarded-Scheme X-Scheme X-Forwarded-HTTPS X-Forwarded-SSL X-HTTPS
    WSGITrustedProxies 10.1.2.3
</Location>

# Repeated directive: cumulative.
<Location /t/cumulative>
    WSGITrustedProxyHeaders X-Forwarded-For
    WSGITrustedProxyHeaders X-Forwarded-Proto X-Forwarded-Host
</Location>

# Several headers of one category.
<Location /t/client-multi>
    WSGITrustedProxyHeaders X-Forwarded-For X-Client-IP X-Real-IP
</Location>

# Lower-case header names in the directive.
<Location /t/lowercase>
    WSGITrustedProxyHeaders x-forwarded-for x-forwarded-proto
</Location>

# X-Forwarded-For walk.
<Location /t/walk>
    WSGITrustedProxyHeaders X-Forwarded-For
    WSGITrustedProxies 127.0.0.1 10.0.0.0/8
</Location>

# Real <Directory> context.
WSGIScriptAlias /pdir {apps}/pdir/environ.wsgi
<Directory {apps}/pdir>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto
    WSGITrustedProxies 127.0.0.1
</Directory>
WSGIScriptAlias /pdir-untrusted {apps}/pdir-untrusted/environ.wsgi
<Directory {apps}/pdir-untrusted>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto
    WSGITrustedProxies 10.1.2.3
</Directory>

# .htaccess (FileInfo).
WSGIScriptAlias /ht {apps}/ht/environ.wsgi
<Directory {apps}/ht>
    AllowOverride FileInfo
</Directory>
WSGIScriptAlias /ht-untrusted {apps}/ht-untrusted/environ.wsgi
<Directory {apps}/ht-untrusted>
    AllowOverride FileInfo
</Directory>
WSGIScriptAlias /ht-authconfig {apps}/ht-authconfig/environ.wsgi
<Directory {apps}/ht-authconfig>
    AllowOverride AuthConfig
</Directory>
WSGIScriptAlias /ht-bad {apps}/ht-bad/environ.wsgi
<Directory {apps}/ht-bad>
    AllowOverride FileInfo
</Directory>
""" + _locations() + '\n'

HTACCESS = {
    'ht': 'WSGITrustedProxyHeaders X-Forwarded-For\n'
          'WSGITrustedProxyHeaders X-Forwarded-Proto\n'
          'WSGITrustedProxies 127.0.0.1\n',
    'ht-untrusted': 'WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto\n'
                    'WSGITrustedProxies 10.1.2.3\n',
    'ht-authconfig': 'WSGITrustedProxyHeaders X-Forwarded-For\n',
    'ht-bad': 'WSGITrustedProxyHeaders X-Forwarded-For\n'
              'WSGITrustedProxies 10.0.0.0/8 not-an-ip\n',
}


def _make_dirs(apache):
    src = os.path.join(apache.apps, 'environ.wsgi')
    for d in ['pdir', 'pdir-untrusted'] + list(HTACCESS):
        path = os.path.join(apache.apps, d)
        os.makedirs(path, exist_ok=True)
        os.chmod(path, 0o755)
        shutil.copy(src, os.path.join(path, 'environ.wsgi'))
        os.chmod(os.path.join(path, 'environ.wsgi'), 0o644)
        if d in HTACCESS:
            with open(os.path.join(path, '.htaccess'), 'w') as f:
                f.write(HTACCESS[d])
            os.chmod(os.path.join(path, '.htaccess'), 0o644)


@pytest.fixture(scope='module')
def server():
    with Apache('event', CONFIG, ssl=True, name='tproxy', pre_start=_make_dirs) as a:
        yield a


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def get_env(s, path, headers=(), https=False, host='127.0.0.1'):
    port = s.sslport if https else s.port
    headers = [('Host', '%s:%d' % (host, port))] + list(headers)
    return harness.get_json(s, path, headers=headers, https=https)['environ']


def baseline(s, https=False, script='/t', host=None):
    """Values of the affected variables when no proxy header applies."""
    port = s.sslport if https else s.port
    return {
        'REMOTE_ADDR': '127.0.0.1',
        'HTTP_HOST': '%s:%d' % (host or '127.0.0.1', port),
        'SERVER_NAME': host or '127.0.0.1',
        'SERVER_PORT': str(port),
        'SCRIPT_NAME': script,
        'mod_wsgi.script_name': script,
        'mod_wsgi.mount_point': None,
        'wsgi.url_scheme': 'https' if https else 'http',
    }


def effect(header, value):
    """Variables that change when ``header`` with ``value`` is applied."""
    cat = CATEGORY_OF[header]
    if cat == 'client':
        return {'REMOTE_ADDR': value}
    if cat == 'host':
        return {'HTTP_HOST': value}
    if cat == 'server':
        return {'SERVER_NAME': value}
    if cat == 'port':
        return {'SERVER_PORT': value}
    if cat == 'script':
        return {'SCRIPT_NAME': value, 'mod_wsgi.mount_point': value}
    if header in STRING_SCHEME:
        return {'wsgi.url_scheme': value.lower()}
    return {'wsgi.url_scheme': 'https' if value.lower() in ('on', 'true', '1') else 'http'}


def check_vars(env, expected):
    got = {k: env.get(k) for k in expected}
    assert got == expected


def check_https_var(env):
    """The scheme reaches the app only as wsgi.url_scheme: HTTPS is never
    passed, whatever a proxy header or mod_ssl said (as in mod_wsgi 6)."""
    assert env['wsgi.url_scheme'] in ('http', 'https')
    assert 'HTTPS' not in env, env.get('HTTPS')


def proxy_keys(env):
    return {k: env[k] for k in env if k in {env_key(h) for h in ALL_HEADERS}}


def no_value_anywhere(env, value):
    return [k for k, v in env.items() if isinstance(v, str) and value in v]


# --------------------------------------------------------------------------
# No directive, proxies only
# --------------------------------------------------------------------------

@pytest.mark.parametrize('path', ['/t/none', '/t/proxies-only'])
def test_no_headers_listed_everything_passes_through(server, path):
    env = get_env(server, path, [(h, VALUE[h]) for h in ALL_HEADERS])
    assert proxy_keys(env) == {env_key(h): VALUE[h] for h in ALL_HEADERS}
    check_vars(env, baseline(server))
    check_https_var(env)


# --------------------------------------------------------------------------
# Trusted peer: each header applied, its synonyms stripped
# --------------------------------------------------------------------------

@pytest.mark.parametrize('mode', list(TRUST_MODES))
@pytest.mark.parametrize('header', ALL_HEADERS)
def test_trusted_header_applied_and_synonyms_removed(server, mode, header):
    synonyms = CATEGORIES[CATEGORY_OF[header]]
    sent = [(h, VALUE[h] if h == header else DECOY[h]) for h in synonyms]
    env = get_env(server, '/t/%s/%s' % (mode, slug(header)), sent)
    expected = baseline(server)
    expected.update(effect(header, VALUE[header]))
    check_vars(env, expected)
    check_https_var(env)
    # Only the applied header is left of its category, with its value.
    assert {k: env.get(k) for k in map(env_key, synonyms) if k in env} == \
        {env_key(header): VALUE[header]}
    if CATEGORY_OF[header] != 'scheme':
        decoys = {DECOY[h] for h in synonyms if h != header}
        assert not [k for k, v in env.items() if isinstance(v, str) and v in decoys]


@pytest.mark.parametrize('header', [h for h in ALL_HEADERS
                                    if len(CATEGORIES[CATEGORY_OF[h]]) > 1])
def test_trusted_listed_header_absent_synonyms_still_removed(server, header):
    """Only synonyms of the listed header are sent: none applies, all go."""
    synonyms = [h for h in CATEGORIES[CATEGORY_OF[header]] if h != header]
    env = get_env(server, '/t/any/%s' % slug(header), [(h, VALUE[h]) for h in synonyms])
    for h in synonyms:
        assert env_key(h) not in env, h
    check_vars(env, baseline(server))
    check_https_var(env)


@pytest.mark.parametrize('category', list(CATEGORIES))
@pytest.mark.parametrize('mode', ['any', 'single'])
def test_other_categories_pass_through_untouched(server, mode, category):
    """Only the category of the listed header is touched, trusted or not."""
    listed = CATEGORIES[category][0]
    others = [h for h in ALL_HEADERS if CATEGORY_OF[h] != category]
    env = get_env(server, '/t/%s/%s' % (mode, slug(listed)), [(h, VALUE[h]) for h in others])
    for h in others:
        assert env.get(env_key(h)) == VALUE[h], h
    check_vars(env, baseline(server))
    check_https_var(env)


def test_script_name_keeps_original_in_mod_wsgi_script_name(server):
    env = get_env(server, '/t/any/x-script-name/rest?q=1',
                  [('X-Script-Name', '/public/app')])
    assert env['SCRIPT_NAME'] == '/public/app'
    assert env['mod_wsgi.mount_point'] == '/public/app'
    assert env['mod_wsgi.script_name'] == '/t'
    assert env['PATH_INFO'] == '/any/x-script-name/rest'
    assert env['mod_wsgi.path_info'] == '/any/x-script-name/rest'
    assert env['QUERY_STRING'] == 'q=1'


def test_cumulative_directives(server):
    env = get_env(server, '/t/cumulative', [
        ('X-Forwarded-For', '203.0.113.9'),
        ('X-Forwarded-Proto', 'https'),
        ('X-Forwarded-Host', 'front.example'),
        ('X-Real-IP', '198.51.100.7'),
    ])
    assert env['REMOTE_ADDR'] == '203.0.113.9'
    assert env['wsgi.url_scheme'] == 'https'
    assert env['HTTP_HOST'] == 'front.example'
    assert 'HTTP_X_REAL_IP' not in env
    check_https_var(env)


def test_lowercase_names_in_directive(server):
    env = get_env(server, '/t/lowercase', [
        ('X-Forwarded-For', '203.0.113.9'), ('X-Forwarded-Proto', 'https'),
        ('X-Client-IP', '198.51.100.7')])
    assert env['REMOTE_ADDR'] == '203.0.113.9'
    assert env['wsgi.url_scheme'] == 'https'
    assert 'HTTP_X_CLIENT_IP' not in env


@pytest.mark.parametrize('sent', [
    ['X-Client-IP'], ['X-Real-IP'], ['X-Forwarded-For'],
    ['X-Forwarded-For', 'X-Real-IP'], ['X-Client-IP', 'X-Real-IP'],
    ['X-Forwarded-For', 'X-Client-IP', 'X-Real-IP'],
], ids=lambda s: '+'.join(s))
def test_several_listed_in_one_category_exactly_one_survives(server, sent):
    """With several client headers listed, exactly one is left in the
    environ and REMOTE_ADDR is its value."""
    env = get_env(server, '/t/client-multi', [(h, VALUE[h]) for h in sent])
    left = [h for h in CATEGORIES['client'] if env_key(h) in env]
    assert len(left) == 1, left
    assert left[0] in sent
    assert env['REMOTE_ADDR'] == VALUE[left[0]] == env[env_key(left[0])]
    if len(sent) == 1:
        assert left == sent


# --------------------------------------------------------------------------
# Untrusted peer (CVE-2022-2255): everything of the category removed
# --------------------------------------------------------------------------

@pytest.mark.parametrize('mode', list(UNTRUST_MODES))
@pytest.mark.parametrize('header', ALL_HEADERS)
def test_untrusted_peer_category_removed_nothing_applied(server, mode, header):
    env = get_env(server, '/t/%s/%s' % (mode, slug(header)),
                  [(h, VALUE[h]) for h in ALL_HEADERS])
    for h in CATEGORIES[CATEGORY_OF[header]]:
        assert env_key(h) not in env, h
    check_vars(env, baseline(server))
    check_https_var(env)


@pytest.mark.parametrize('header', ALL_HEADERS)
def test_untrusted_peer_each_synonym_alone_removed(server, header):
    """Every header listed, peer untrusted: each synonym sent alone is
    removed and has no effect."""
    env = get_env(server, '/t/untrust-all', [(header, VALUE[header])])
    assert env_key(header) not in env
    check_vars(env, baseline(server))
    check_https_var(env)


def test_untrusted_peer_all_listed_all_sent(server):
    env = get_env(server, '/t/untrust-all', [(h, VALUE[h]) for h in ALL_HEADERS])
    assert proxy_keys(env) == {}
    check_vars(env, baseline(server))
    check_https_var(env)
    for h in ALL_HEADERS:
        if CATEGORY_OF[h] != 'scheme':
            assert not no_value_anywhere(env, VALUE[h]), h


@pytest.mark.parametrize('header', ['X-Forwarded-Server', 'X-Forwarded-Port'])
def test_untrusted_server_and_port_stripped_6_0_0_regression(server, header):
    env = get_env(server, '/t/single/%s' % slug(header), [(header, VALUE[header])])
    assert env_key(header) not in env
    check_vars(env, baseline(server))


# --------------------------------------------------------------------------
# X-Forwarded-For
# --------------------------------------------------------------------------

@pytest.mark.parametrize('value,remote', [
    ('1.2.3.4, 5.6.7.8', '1.2.3.4'),
    ('1.2.3.4,5.6.7.8,9.9.9.9', '1.2.3.4'),
    ('1.2.3.4', '1.2.3.4'),
    ('1.2.3.4,,5.6.7.8', '1.2.3.4'),
    (', 1.2.3.4', '1.2.3.4'),
    (',1.2.3.4, 5.6.7.8', '1.2.3.4'),
    (',, ,  , 1.2.3.4', '1.2.3.4'),
    ('1.2.3.4  ,5.6.7.8', '1.2.3.4'),
    ('2001:db8::1, 5.6.7.8', '2001:db8::1'),
])
def test_xff_without_trusted_proxies_first_non_empty(server, value, remote):
    env = get_env(server, '/t/any/x-forwarded-for', [('X-Forwarded-For', value)])
    assert env['REMOTE_ADDR'] == remote


def test_xff_without_trusted_proxies_header_left_as_is(server):
    env = get_env(server, '/t/any/x-forwarded-for',
                  [('X-Forwarded-For', '1.2.3.4,5.6.7.8, 9.9.9.9')])
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert env['HTTP_X_FORWARDED_FOR'] == '1.2.3.4,5.6.7.8, 9.9.9.9'


@pytest.mark.parametrize('path', ['/t/any/x-forwarded-for', '/t/walk'])
@pytest.mark.parametrize('value', ['', ',', ', ,', ',,,', ' , '])
def test_xff_only_empty_elements_never_empty_remote_addr(server, path, value):
    env = get_env(server, path, [('X-Forwarded-For', value)])
    assert env['REMOTE_ADDR'] == '127.0.0.1'


@pytest.mark.parametrize('value,remote,xff', [
    ('1.2.3.4, 10.0.0.5', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    ('9.9.9.9, 1.2.3.4, 10.0.0.5', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    ('9.9.9.9, 1.2.3.4, 10.0.0.5, 127.0.0.1', '1.2.3.4', '1.2.3.4, 10.0.0.5, 127.0.0.1'),
    # A trusted address left of an untrusted one is not skipped.
    ('9.9.9.9, 10.0.0.6, 1.2.3.4, 10.0.0.5', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    # All trusted: the leftmost.
    ('10.0.0.7, 10.0.0.5', '10.0.0.7', '10.0.0.7, 10.0.0.5'),
    ('10.0.0.7', '10.0.0.7', '10.0.0.7'),
    ('127.0.0.1', '127.0.0.1', '127.0.0.1'),
    # None trusted: the rightmost.
    ('9.9.9.9, 1.2.3.4', '1.2.3.4', '1.2.3.4'),
    ('1.2.3.4', '1.2.3.4', '1.2.3.4'),
    # Separators and empty elements.
    ('1.2.3.4,10.0.0.5', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    ('9.9.9.9,1.2.3.4 ,  10.0.0.5', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    ('1.2.3.4,,10.0.0.5', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    ('1.2.3.4, , 10.0.0.5,', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    (', 10.0.0.5', '10.0.0.5', '10.0.0.5'),
    (',,1.2.3.4,,10.0.0.5,,', '1.2.3.4', '1.2.3.4, 10.0.0.5'),
    # IPv6 client.
    ('2001:db8::1, 10.0.0.5', '2001:db8::1', '2001:db8::1, 10.0.0.5'),
])
def test_xff_walk_with_trusted_proxies(server, value, remote, xff):
    env = get_env(server, '/t/walk', [('X-Forwarded-For', value)])
    assert env['REMOTE_ADDR'] == remote
    assert env['HTTP_X_FORWARDED_FOR'] == xff


def test_xff_walk_multiple_header_lines_are_one_list(server):
    """Two X-Forwarded-For lines form one list: the client cannot hide a
    spoofed first line behind the proxy's appended one."""
    env = get_env(server, '/t/walk', [('X-Forwarded-For', '6.6.6.6'),
                                      ('X-Forwarded-For', '1.2.3.4, 10.0.0.5')])
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert env['HTTP_X_FORWARDED_FOR'] == '1.2.3.4, 10.0.0.5'


def test_xff_walk_long_list(server):
    hops = ['10.%d.%d.%d' % (i // 200, (i // 10) % 20, i % 10 + 1) for i in range(500)]
    value = '6.6.6.6, 1.2.3.4, ' + ', '.join(hops)
    assert len(value) < 8000
    env = get_env(server, '/t/walk', [('X-Forwarded-For', value)])
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert env['HTTP_X_FORWARDED_FOR'] == '1.2.3.4, ' + ', '.join(hops)


# --------------------------------------------------------------------------
# Scheme
# --------------------------------------------------------------------------

SCHEME_CASES = (
    [(h, 'https', 'https') for h in STRING_SCHEME] +
    [(h, 'http', 'http') for h in STRING_SCHEME] +
    [(h, v, 'https') for h in BOOL_SCHEME for v in ('On', 'true', '1')] +
    [(h, v, 'http') for h in BOOL_SCHEME for v in ('Off', 'false', '0')]
)


@pytest.mark.parametrize('header,value,scheme', SCHEME_CASES)
def test_scheme_header_over_http(server, header, value, scheme):
    env = get_env(server, '/t/any/%s' % slug(header), [(header, value)])
    assert env['wsgi.url_scheme'] == scheme
    check_https_var(env)
    assert env[env_key(header)] == value


@pytest.mark.parametrize('header,value,scheme', [
    ('X-Forwarded-Proto', 'HTTPS', 'https'),
    ('X-Scheme', 'Https', 'https'),
    ('X-Forwarded-SSL', 'on', 'https'),
    ('X-Forwarded-HTTPS', 'TRUE', 'https'),
    ('X-HTTPS', 'ON', 'https'),
])
def test_scheme_values_case_insensitive(server, header, value, scheme):
    """mod_wsgi compares the values with strcasecmp."""
    env = get_env(server, '/t/any/%s' % slug(header), [(header, value)])
    assert env['wsgi.url_scheme'] == scheme


@pytest.mark.parametrize('header,value,scheme', [
    ('X-Forwarded-Proto', 'http', 'http'),
    ('X-Forwarded-Scheme', 'http', 'http'),
    ('X-Forwarded-SSL', 'Off', 'http'),
    ('X-HTTPS', '0', 'http'),
    ('X-Forwarded-Proto', 'https', 'https'),
    ('X-Forwarded-HTTPS', 'On', 'https'),
])
def test_trusted_scheme_header_beats_mod_ssl(server, header, value, scheme):
    """6.0.0 regression: a trusted scheme header wins over the connection's
    own TLS."""
    env = get_env(server, '/t/any/%s' % slug(header), [(header, value)], https=True)
    assert env['wsgi.url_scheme'] == scheme
    check_https_var(env)


def test_scheme_header_listed_but_absent_over_https(server):
    env = get_env(server, '/t/any/x-forwarded-proto', https=True)
    assert env['wsgi.url_scheme'] == 'https'
    check_https_var(env)


@pytest.mark.parametrize('header', ['X-Forwarded-Proto', 'X-Forwarded-SSL'])
def test_untrusted_scheme_header_over_https_ignored(server, header):
    value = 'http' if header == 'X-Forwarded-Proto' else 'Off'
    env = get_env(server, '/t/single/%s' % slug(header), [(header, value)], https=True)
    assert env['wsgi.url_scheme'] == 'https'
    assert env_key(header) not in env
    check_https_var(env)


def test_untrusted_all_over_https(server):
    sent = [(h, DECOY[h]) for h in ALL_HEADERS]
    env = get_env(server, '/t/untrust-all', sent, https=True)
    assert proxy_keys(env) == {}
    check_vars(env, baseline(server, https=True))
    check_https_var(env)


# --------------------------------------------------------------------------
# <Directory> and .htaccess contexts
# --------------------------------------------------------------------------

def test_directory_context_trusted(server):
    env = get_env(server, '/pdir', [('X-Forwarded-For', '1.2.3.4'),
                                    ('X-Forwarded-Proto', 'https'),
                                    ('X-Real-IP', '6.6.6.6')])
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert env['wsgi.url_scheme'] == 'https'
    assert 'HTTP_X_REAL_IP' not in env


def test_directory_context_untrusted(server):
    env = get_env(server, '/pdir-untrusted', [('X-Forwarded-For', '1.2.3.4'),
                                              ('X-Forwarded-Proto', 'https'),
                                              ('X-Real-IP', '6.6.6.6')])
    check_vars(env, baseline(server, script='/pdir-untrusted'))
    assert 'HTTP_X_FORWARDED_FOR' not in env
    assert 'HTTP_X_FORWARDED_PROTO' not in env
    assert 'HTTP_X_REAL_IP' not in env


def test_htaccess_fileinfo_trusted(server):
    env = get_env(server, '/ht', [('X-Forwarded-For', '1.2.3.4, 10.9.9.9'),
                                  ('X-Forwarded-Proto', 'https'),
                                  ('X-Client-IP', '6.6.6.6')])
    # 10.9.9.9 is not a trusted proxy here: the rightmost untrusted wins.
    assert env['REMOTE_ADDR'] == '10.9.9.9'
    assert env['wsgi.url_scheme'] == 'https'
    assert 'HTTP_X_CLIENT_IP' not in env
    env = get_env(server, '/ht', [('X-Forwarded-For', '1.2.3.4, 127.0.0.1')])
    assert env['REMOTE_ADDR'] == '1.2.3.4'


def test_htaccess_fileinfo_untrusted(server):
    env = get_env(server, '/ht-untrusted', [('X-Forwarded-For', '1.2.3.4'),
                                            ('X-Forwarded-Proto', 'https'),
                                            ('X-Client-IP', '6.6.6.6')])
    check_vars(env, baseline(server, script='/ht-untrusted'))
    assert not [k for k in ('HTTP_X_FORWARDED_FOR', 'HTTP_X_FORWARDED_PROTO',
                            'HTTP_X_CLIENT_IP') if k in env]


def test_htaccess_without_fileinfo_is_an_error(server):
    off = server.log_size()
    r = server.get('/ht-authconfig', headers=[('X-Forwarded-For', '1.2.3.4')])
    assert r.status == 500
    log = server.wait_for_log('WSGITrustedProxyHeaders', off, timeout=5)
    assert log is not None and 'not allowed here' in log, server.log_since(off)


def test_htaccess_bad_trusted_proxy_is_an_error(server):
    off = server.log_size()
    r = server.get('/ht-bad', headers=[('X-Forwarded-For', '1.2.3.4')])
    assert r.status == 500
    log = server.wait_for_log('not-an-ip', off, timeout=5)
    assert log is not None and '.htaccess' in log, server.log_since(off)


# --------------------------------------------------------------------------
# Adversarial requests
# --------------------------------------------------------------------------

@pytest.mark.parametrize('mode', list(UNTRUST_MODES))
def test_connection_header_does_not_smuggle_xff(server, mode):
    env = get_env(server, '/t/%s/x-forwarded-for' % mode, [
        ('Connection', 'close, X-Forwarded-For'),
        ('X-Forwarded-For', '6.6.6.6'),
    ])
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert 'HTTP_X_FORWARDED_FOR' not in env
    assert not no_value_anywhere(env, '6.6.6.6')


def test_connection_header_naming_every_proxy_header_untrusted(server):
    env = get_env(server, '/t/untrust-all',
                  [('Connection', 'close, ' + ', '.join(ALL_HEADERS))] +
                  [(h, VALUE[h]) for h in ALL_HEADERS])
    assert proxy_keys(env) == {}
    check_vars(env, baseline(server))


@pytest.mark.parametrize('name', ['X_Forwarded_For', 'X-Forwarded_For', 'X_FORWARDED_FOR',
                                  'X.Forwarded.For'])
@pytest.mark.parametrize('path', ['/t/any/x-forwarded-for', '/t/walk', '/t/single/x-forwarded-for',
                                  '/t/none'])
def test_non_dash_names_dropped(server, path, name):
    env = get_env(server, path, [(name, '6.6.6.6')])
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert 'HTTP_X_FORWARDED_FOR' not in env
    assert not no_value_anywhere(env, '6.6.6.6')


@pytest.mark.parametrize('order', ['dash-first', 'underscore-first'])
def test_underscore_name_does_not_join_or_override(server, order):
    hdrs = [('X-Forwarded-For', '1.2.3.4'), ('X_Forwarded_For', '6.6.6.6')]
    if order == 'underscore-first':
        hdrs.reverse()
    env = get_env(server, '/t/any/x-forwarded-for', hdrs)
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert env['HTTP_X_FORWARDED_FOR'] == '1.2.3.4'


@pytest.mark.parametrize('name', ['X_Forwarded_Proto', 'X_Forwarded_SSL', 'X_Scheme'])
def test_underscore_scheme_header_ignored(server, name):
    header = name.replace('_', '-')
    value = 'On' if header in BOOL_SCHEME else 'https'
    env = get_env(server, '/t/any/%s' % slug(header), [(name, value)])
    assert env['wsgi.url_scheme'] == 'http'
    check_https_var(env)


def test_lowercase_header_names_from_client(server):
    env = get_env(server, '/t/any/x-real-ip', [('x-real-ip', '1.2.3.4'),
                                               ('x-client-ip', '6.6.6.6')])
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert 'HTTP_X_CLIENT_IP' not in env
    env = get_env(server, '/t/single/x-client-ip', [('x-client-ip', '6.6.6.6'),
                                                    ('X-REAL-IP', '6.6.6.7')])
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert 'HTTP_X_CLIENT_IP' not in env and 'HTTP_X_REAL_IP' not in env


def test_keepalive_requests_do_not_leak_between_each_other(server):
    """A proxy header applied on one request of a connection does not carry
    over to the next one."""
    import harness
    with harness.Connection(server.port) as c:
        r1 = c.request('GET', '/t/any/x-forwarded-for', [('X-Forwarded-For', '1.2.3.4')])
        r2 = c.request('GET', '/t/any/x-forwarded-for', [])
        r3 = c.request('GET', '/t/any/x-forwarded-proto', [('X-Forwarded-Proto', 'https')])
        r4 = c.request('GET', '/t/any/x-forwarded-proto', [])
    assert r1.json()['environ']['REMOTE_ADDR'] == '1.2.3.4'
    assert r2.json()['environ']['REMOTE_ADDR'] == '127.0.0.1'
    assert r3.json()['environ']['wsgi.url_scheme'] == 'https'
    assert r4.json()['environ']['wsgi.url_scheme'] == 'http'


# --------------------------------------------------------------------------
# Server and virtual host contexts (a second instance)
# --------------------------------------------------------------------------

VHOST_CONFIG = r"""
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias /t {apps}/environ.wsgi
WSGITrustedProxyHeaders X-Forwarded-Proto

# Server-level headers, directory-level proxies.
<Location /t/loc-untrusted>
    WSGITrustedProxies 10.1.2.3
</Location>

<VirtualHost 127.0.0.1:{port}>
    ServerName default.test
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName vh-trusted.test
    WSGITrustedProxyHeaders X-Forwarded-For
    WSGITrustedProxyHeaders X-Forwarded-Host
    WSGITrustedProxies 127.0.0.1
</VirtualHost>
<VirtualHost 127.0.0.1:{port}>
    ServerName vh-untrusted.test
    WSGITrustedProxyHeaders X-Forwarded-For
    WSGITrustedProxies 10.1.2.3
</VirtualHost>
"""


@pytest.fixture(scope='module')
def vhosts():
    with Apache('event', VHOST_CONFIG, name='tproxyvh') as a:
        yield a


def test_server_level_directive(vhosts):
    env = get_env(vhosts, '/t', [('X-Forwarded-Proto', 'https'), ('X-Scheme', 'http'),
                                 ('X-Forwarded-For', '1.2.3.4')], host='default.test')
    assert env['wsgi.url_scheme'] == 'https'
    assert 'HTTP_X_SCHEME' not in env
    # Client category not listed: untouched.
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert env['HTTP_X_FORWARDED_FOR'] == '1.2.3.4'


def test_vhost_level_trusted(vhosts):
    env = get_env(vhosts, '/t', [('X-Forwarded-For', '1.2.3.4, 127.0.0.1'),
                                 ('X-Forwarded-Host', 'front.example'),
                                 ('X-Real-IP', '6.6.6.6'), ('X-Host', 'evil.example')],
                  host='vh-trusted.test')
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert env['HTTP_X_FORWARDED_FOR'] == '1.2.3.4, 127.0.0.1'
    assert env['HTTP_HOST'] == 'front.example'
    assert 'HTTP_X_REAL_IP' not in env and 'HTTP_X_HOST' not in env


def test_vhost_level_untrusted(vhosts):
    env = get_env(vhosts, '/t', [('X-Forwarded-For', '1.2.3.4'), ('X-Client-IP', '6.6.6.6')],
                  host='vh-untrusted.test')
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert 'HTTP_X_FORWARDED_FOR' not in env and 'HTTP_X_CLIENT_IP' not in env


def test_server_headers_with_location_proxies_untrusted(vhosts):
    """Settings resolve field by field (a directory section's value, else
    the server's): the server's header list with the <Location>'s proxy
    list makes this peer untrusted."""
    env = get_env(vhosts, '/t/loc-untrusted', [('X-Forwarded-Proto', 'https'),
                                               ('X-Forwarded-SSL', 'On')],
                  host='default.test')
    assert env['wsgi.url_scheme'] == 'http'
    assert 'HTTP_X_FORWARDED_PROTO' not in env and 'HTTP_X_FORWARDED_SSL' not in env


# --------------------------------------------------------------------------
# apache2 -t
# --------------------------------------------------------------------------

def config_test(snippet):
    return harness.config_test(snippet, name='tpcfg')


GOOD = [
    'WSGITrustedProxyHeaders X-Forwarded-For',
    'WSGITrustedProxyHeaders ' + ' '.join(ALL_HEADERS),
    'WSGITrustedProxyHeaders x-forwarded-for X-FORWARDED-PROTO',
    'WSGITrustedProxyHeaders X-Forwarded-For\nWSGITrustedProxyHeaders X-Real-IP',
    'WSGITrustedProxies 127.0.0.1',
    'WSGITrustedProxies 127.0.0.1 10.0.0.0/8 192.168.0.0/16 172.16.0.0/12',
    'WSGITrustedProxies ::1 2001:db8::/32',
    'WSGITrustedProxies 10.0.0.1\nWSGITrustedProxies 10.0.0.2',
    '<VirtualHost 127.0.0.1:{port}>\nServerName v.test\n'
    'WSGITrustedProxyHeaders X-Forwarded-For\nWSGITrustedProxies 10.0.0.0/8\n</VirtualHost>',
    '<Directory /tmp>\nWSGITrustedProxyHeaders X-Forwarded-For\n'
    'WSGITrustedProxies 10.0.0.0/8\n</Directory>',
    '<Location /x>\nWSGITrustedProxyHeaders X-Forwarded-For\n'
    'WSGITrustedProxies 10.0.0.0/8\n</Location>',
    '<Files x.wsgi>\nWSGITrustedProxyHeaders X-Forwarded-For\n'
    'WSGITrustedProxies 10.0.0.0/8\n</Files>',
]


@pytest.mark.parametrize('snippet', GOOD, ids=[s.replace('\n', ' ')[:70] for s in GOOD])
def test_config_accepted(snippet):
    rc, out = config_test(snippet + '\n')
    assert rc == 0, out
    assert 'Syntax OK' in out


BAD_HEADERS = [
    'X-Bogus-Header', 'Host', 'Forwarded', 'X-Forwarded',
    'X-Forwarded-For X-Nope',
]


@pytest.mark.parametrize('args', BAD_HEADERS)
def test_unknown_header_fails_config_test(args):
    rc, out = config_test('WSGITrustedProxyHeaders %s\n' % args)
    assert rc != 0, out
    assert 'WSGITrustedProxyHeaders' in out, out


BAD_PROXIES = [
    ('not-an-ip', 'not-an-ip'),
    ('localhost', 'localhost'),
    ('300.1.1.1', '300.1.1.1'),
    ('10.0.0.0/33', '10.0.0.0/33'),
    ('1.2.3.4/abc', '1.2.3.4/abc'),
    ('::1/129', '::1/129'),
    ('127.0.0.1 bogus', 'bogus'),
]


@pytest.mark.parametrize('args,bad', BAD_PROXIES, ids=[a for a, _ in BAD_PROXIES])
def test_bad_proxy_fails_config_test(args, bad):
    rc, out = config_test('WSGITrustedProxies %s\n' % args)
    assert rc != 0, out
    assert bad in out, out


# --------------------------------------------------------------------------
# Daemon mode: the rewritten environ is what the daemon's app sees
# --------------------------------------------------------------------------

DAEMON_CONFIG = r"""
WSGIDaemonProcess tpd processes=1 threads=2 display-name=%{GROUP}
WSGIScriptAlias /d {apps}/environ.wsgi process-group=tpd application-group=%{GLOBAL}
<Location /d/walk>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Port
    WSGITrustedProxies 127.0.0.1 10.0.0.0/8
</Location>
<Location /d/untrusted>
    WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto X-Forwarded-Port
    WSGITrustedProxies 10.1.2.3
</Location>
"""


@pytest.fixture(scope='module')
def daemon():
    import daemon_util as du
    with Apache('event', DAEMON_CONFIG, ssl=True, name='tproxyd') as a:
        du.wait_daemons(a, 'tpd', 1)
        yield a


def test_daemon_trusted(daemon):
    env = get_env(daemon, '/d/walk', [('X-Forwarded-For', '9.9.9.9, 1.2.3.4, 10.0.0.5'),
                                      ('X-Forwarded-Proto', 'https'),
                                      ('X-Forwarded-Port', '8443'),
                                      ('X-Real-IP', '6.6.6.6'), ('X-Scheme', 'http')])
    assert env['mod_wsgi.process_group'] == 'tpd'
    assert env['REMOTE_ADDR'] == '1.2.3.4'
    assert env['HTTP_X_FORWARDED_FOR'] == '1.2.3.4, 10.0.0.5'
    assert env['wsgi.url_scheme'] == 'https'
    assert env['SERVER_PORT'] == '8443'
    assert 'HTTP_X_REAL_IP' not in env and 'HTTP_X_SCHEME' not in env
    check_https_var(env)


def test_daemon_trusted_http_over_tls(daemon):
    env = get_env(daemon, '/d/walk', [('X-Forwarded-Proto', 'http')], https=True)
    assert env['mod_wsgi.process_group'] == 'tpd'
    assert env['wsgi.url_scheme'] == 'http'
    check_https_var(env)


def test_daemon_untrusted(daemon):
    env = get_env(daemon, '/d/untrusted', [(h, VALUE[h]) for h in ALL_HEADERS])
    assert env['mod_wsgi.process_group'] == 'tpd'
    for h in CATEGORIES['client'] + CATEGORIES['scheme'] + CATEGORIES['port']:
        assert env_key(h) not in env, h
    assert env['REMOTE_ADDR'] == '127.0.0.1'
    assert env['wsgi.url_scheme'] == 'http'
    assert env['SERVER_PORT'] == str(daemon.port)
    check_https_var(env)
    # Categories not listed pass through.
    assert env['HTTP_X_FORWARDED_HOST'] == VALUE['X-Forwarded-Host']
