# Shared shell helpers for scripts/*. Source it; it defines functions and ROOT, nothing else.
# shellcheck shell=bash

# The checkout this script lives in.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# CI may run without HOME; cargo, npm and the caches need one.
if [[ -z ${HOME:-} ]]; then
    HOME=$(getent passwd "$(id -u)" | cut -d: -f6)
    export HOME
fi

# Messages go to stderr: stdout of `scripts/services` is for `eval`.
say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "${0##*/}" "$*" >&2
    exit 1
}

# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }

# fmt_ms MS: "1m23.4s" / "4.2s".
fmt_ms() {
    local ms=$1 s
    s=$((ms / 1000))
    if ((s >= 60)); then
        printf '%dm%02d.%01ds' $((s / 60)) $((s % 60)) $(((ms % 1000) / 100))
    else
        printf '%d.%01ds' "$s" $(((ms % 1000) / 100))
    fi
}
