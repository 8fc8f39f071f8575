#!/usr/bin/env bash
# The tools some tests drive that are not Python packages, from Debian's packages: installed
# here when missing, so `make test` on a fresh machine runs every test and skips none.
#   promtool  (package prometheus): the alert rules' checks and unit tests (tests/deploy)
#   chromium  (package chromium): the browser that renders /schema (tests/http/test_schema_viewer.py,
#             through Playwright, which downloads no browser of its own)
# Needs apt and root (or sudo). Without them it says what is missing and carries on: the
# tests that need a tool then say so, and fail under CI.
set -uo pipefail

declare -A package_of=([promtool]=prometheus [chromium]=chromium)
missing=()
for tool in "${!package_of[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${package_of[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && sudo="sudo -n"
fi
if ! command -v apt-get >/dev/null 2>&1 || { [ "$(id -u)" -ne 0 ] && [ -z "$sudo" ]; }; then
    echo "test tools: missing ${missing[*]} (Debian packages); install them to run every test" >&2
    exit 0
fi
echo "test tools: installing ${missing[*]} (Debian packages)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    $sudo apt-get update -qq >/dev/null 2>&1
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
} || echo "test tools: could not install ${missing[*]}" >&2
exit 0
