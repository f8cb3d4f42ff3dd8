# Auth hooks for WSGIAuthUserScript, WSGIAuthGroupScript, WSGIAccessScript.
USERS = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'secret'}
GROUPS = {'alice': ['admins', 'staff'], 'bob': ['staff']}


def check_password(environ, user, password):
    if user == 'carol':
        return 'Carol' if password == USERS[user] else False
    if user not in USERS:
        return None
    return USERS[user] == password


def groups_for_user(environ, user):
    return GROUPS.get(user, [])


def allow_access(environ, host):
    if 'HTTP_X_EXPECT_GROUP' in environ:
        return environ['mod_wsgi.application_group'] == environ['HTTP_X_EXPECT_GROUP']
    if environ.get('HTTP_X_BLOCK') == 'yes':
        return False
    if environ.get('HTTP_X_BLOCK') == 'error':
        raise RuntimeError('access script failed on purpose')
    return True


def get_realm_hash(environ, user, realm):
    import hashlib
    if user not in USERS:
        return None
    return hashlib.md5(('%s:%s:%s' % (user, realm, USERS[user])).encode()).hexdigest()
