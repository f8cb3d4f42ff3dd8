#!/bin/sh
# Serves one WSGI script with the freshly built module in a foreground
# Apache (event MPM) until Ctrl-C. Usage: run-example.sh path/to/app.wsgi
set -eu
script=$(realpath "$1")
port=${PORT:-8000}
module=$(realpath target/release/libmod_wsgi_rs.so)
mods=$(apxs -q LIBEXECDIR)

# Apache's children run as www-data: give them a world-readable copy of the
# script rather than a path under a home directory they cannot enter.
root=$(mktemp -d /tmp/mod_wsgi_rs-example.XXXXXX)
chmod 755 "$root"
cp "$script" "$root/app.wsgi"
chmod 644 "$root/app.wsgi"
trap 'rm -rf "$root"' EXIT INT TERM

user=www-data
[ "$(id -u)" = 0 ] || user=$(id -un)
cat > "$root/httpd.conf" <<CONF
ServerRoot $root
Listen 127.0.0.1:$port
ServerName 127.0.0.1
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule wsgi_module $module
User $user
Group $user
PidFile $root/httpd.pid
ErrorLog /dev/stderr
LogLevel info
DefaultRuntimeDir $root
Mutex file:$root
StartServers 1
WSGIScriptAlias / $root/app.wsgi
WSGIApplicationGroup %{GLOBAL}
CONF

echo "serving $1 on http://127.0.0.1:$port/ (Ctrl-C to stop)"
/usr/sbin/apache2 -f "$root/httpd.conf" -DFOREGROUND
