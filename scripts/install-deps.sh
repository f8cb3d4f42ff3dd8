#!/bin/sh
# Installs what building and testing mod_wsgi-rs needs on Debian 12, as root.
# Idempotent and quick when everything is already there.
set -eu

# iproute2 (ss), gdb and curl are used by the integration tests.
packages="apache2 apache2-dev libclang-dev python3-dev python3-venv python3-pytest make gcc curl openssl procps iproute2 gdb"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages:$missing; run this script as root (or install them)" >&2
        exit 1
    fi
    echo "installing:$missing"
    # Keep the distribution's Apache service from starting on port 80: tests
    # and examples start their own Apache with a generated config.
    # The policy file is removed again however the install ends, so a failed
    # apt-get never leaves every service start on the host blocked.
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        trap 'rm -f "$policy"' EXIT
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    echo "cargo (Rust 1.85 or newer) is required; install it with rustup" >&2
    exit 1
fi
