#!/bin/sh
# deps.sh: install the Debian packages a target needs, only those that are missing.
# Usage: deps.sh [build] [test] [fuzz] [bench]   (several at once are fine)
# Nothing is done when everything is already present; apt-get runs only as root.
set -eu

need=""
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
have_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
want() { need="$need $1"; }

for what in "${@:-build}"; do
    case "$what" in
    build)
        command -v cc >/dev/null 2>&1 || want gcc
        command -v make >/dev/null 2>&1 || want make
        command -v pkg-config >/dev/null 2>&1 || want pkg-config
        have_pc libuv || want libuv1-dev
        have_pc sqlite3 || want libsqlite3-dev
        have_pc libpq || want libpq-dev
        have_pc nettle || want nettle-dev
        have_pc openssl || want libssl-dev
        # the management API's JSON
        have_pc jansson || want libjansson-dev
        have_deb libwslay-dev || want libwslay-dev
        have_deb libhttp-parser-dev || want libhttp-parser-dev
        # stompd only: config file parser, passcode hashing, crypt(3)
        have_pc inih || want libinih-dev
        have_pc libsodium || want libsodium-dev
        have_pc libxcrypt || want libcrypt-dev
        ;;
    test)
        have_pc cmocka || want libcmocka-dev
        # The PostgreSQL store's tests start a private server from Debian's binaries.
        ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want postgresql
        have_deb python3-stomp || want python3-stomp
        # The manual pages are linted with groff and man (tests/daemon/test_man).
        command -v groff >/dev/null 2>&1 || want groff-base
        command -v man >/dev/null 2>&1 || want man-db
        # The TLS tests make their certificates with the openssl command.
        command -v openssl >/dev/null 2>&1 || want openssl
        have_deb ruby-stomp || want ruby-stomp
        # The browser test (tests/web/test_chat) drives Debian's Chromium headless.
        [ -x /usr/bin/chromium ] || want chromium
        # tests/web/test_wss makes Chromium trust its test CA through an NSS database.
        command -v certutil >/dev/null 2>&1 || want libnss3-tools
        # /metrics is checked with promtool (tests/admin/).
        command -v promtool >/dev/null 2>&1 || want prometheus
        # JavaScript clients: node and npm, then the npm packages pinned in
        # tests/clients/package-lock.json. npm ci needs npm at once, so those two are
        # installed here rather than with the list at the end.
        if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
            if [ "$(id -u)" != 0 ]; then
                echo "deps.sh: node and npm are missing; install them as root:" \
                    "apt-get install nodejs npm" >&2
                exit 1
            fi
            echo "deps.sh: installing nodejs npm"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
        fi
        if [ ! -d tests/clients/node_modules ] ||
            [ tests/clients/package-lock.json -nt tests/clients/node_modules ]; then
            echo "deps.sh: npm ci in tests/clients"
            (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)
        fi
        ;;
    fuzz)
        command -v clang >/dev/null 2>&1 || want clang
        have_deb libclang-rt-14-dev || want libclang-rt-14-dev
        ;;
    bench) ;;
    *) echo "deps.sh: unknown target '$what'" >&2; exit 2 ;;
    esac
done

[ -z "$need" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$need; install them as root: apt-get install$need" >&2
    exit 1
fi
echo "deps.sh: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
