# Sourced by scripts/run, scripts/check and scripts/test (not a command of its own), from the
# repository's root. `ensure_venv REQUIREMENTS [PIP_OPTION...]` creates .venv when it is missing
# (with $PYTHON, default python3, which must be 3.11 or newer) and installs REQUIREMENTS into it
# with the image's exact versions (-c constraints.txt), but only when the files that decide the
# install changed: a stamp in .venv (.venv/.installed-<REQUIREMENTS>) holds their sha256 and is
# written once pip succeeded, so pip runs again when REQUIREMENTS, requirements.txt or
# constraints.txt changes, when the stamp is missing (delete it to force a reinstall), or when
# the last install failed.

say() { printf '==> %s\n' "$*"; }

_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -d' ' -f1
}

ensure_venv() {
    local requirements="$1" python="${PYTHON:-python3}" stamp want f
    shift
    if [ ! -x .venv/bin/python ]; then
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "error: $python is not Python 3.11 or newer; run with PYTHON=python3.11 (or newer)" >&2
            return 1
        fi
        say "creating .venv with $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
        "$python" -m venv .venv
    fi
    stamp=".venv/.installed-${requirements%.txt}"
    want="$(for f in "$requirements" requirements.txt constraints.txt; do echo "$f"; cat "$f"; done | _sha256)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say ".venv is up to date with $requirements and constraints.txt (pip skipped)"
        return 0
    fi
    say "installing $requirements into .venv at the image's versions (constraints.txt): a minute or two the first time"
    rm -f "$stamp"
    .venv/bin/python -m pip install --disable-pip-version-check "$@" -r "$requirements" -c constraints.txt
    echo "$want" >"$stamp"
}
