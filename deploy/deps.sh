#!/usr/bin/env bash
# Installs the Debian packages a task needs, only those missing, without
# letting their maintainer scripts start services (no init system runs on
# our machines; PostgreSQL's own main cluster on 5432 must not start).
#
#   deploy/deps.sh build      compiler, CMake and the libraries pgpulse links
#   deploy/deps.sh server     PostgreSQL 15 server and client
#   deploy/deps.sh test       what the test suite uses besides (promtool, python3, curl, HAProxy,
#                             openssl and htpasswd for the TLS and basic-auth certificates and hashes;
#                             Debian's postgres_exporter for test_compat_011; docker-compose and
#                             the shell linter check deploy/, no engine needed)
#   deploy/deps.sh cluster    what deploy/local/cluster.sh runs besides PostgreSQL (Prometheus, HAProxy, curl)
#   deploy/deps.sh bench      the reference exporter and wrk
#   deploy/deps.sh lint       clang-format, for the formatting check
#   deploy/deps.sh browser    headless Chromium, its WebDriver and Selenium, for the dashboard test
#   deploy/deps.sh package    what the man page and the .deb need (help2man; dpkg-shlibdeps
#                             and file for the dependencies) and their test uses (man,
#                             systemd-analyze, which works without a running systemd)
# Several groups may be given at once.
set -euo pipefail

declare -A groups=(
    [build]="cmake gcc make pkg-config libh2o-dev libuv1-dev libssl-dev libpq-dev libyaml-dev zlib1g-dev libcrypt-dev"
    [server]="postgresql-15 postgresql-client-15 postgresql-contrib"
    [test]="prometheus python3 curl procps shellcheck docker-compose haproxy openssl apache2-utils prometheus-postgres-exporter"
    [cluster]="prometheus haproxy curl"
    [bench]="prometheus-postgres-exporter wrk"
    [lint]="clang-format"
    [browser]="chromium chromium-driver python3-selenium"
    [package]="help2man dpkg-dev file man-db systemd"
)

wanted=()
for g in "$@"; do
    [[ -n ${groups[$g]:-} ]] || { echo "deploy/deps.sh: unknown group \"$g\"" >&2; exit 2; }
    read -r -a pkgs <<<"${groups[$g]}"
    wanted+=("${pkgs[@]}")
done

missing=()
for p in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

echo "deploy/deps.sh: installing ${missing[*]}"
sudo=()
[[ $(id -u) == 0 ]] || sudo=(sudo)
policy=/usr/sbin/policy-rc.d
own_policy=false
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=true
fi
remove_policy() { if $own_policy; then "${sudo[@]}" rm -f "$policy"; fi; }
trap remove_policy EXIT
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
