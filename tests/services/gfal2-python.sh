#!/usr/bin/env bash
# gfal2-python.sh VENV -- install Debian's gfal2 (+ plugins file, xrootd, http, gridftp and
# the gfal-* CLI) and make `import gfal2` work inside VENV, a virtualenv of any CPython
# 3.11.x (e.g. pyenv 3.11.7), without compiling anything.
#
# How: Debian bookworm ships python3-gfal2 1.12.0 as gfal2.cpython-311-x86_64-linux-gnu.so
# (linked against libgfal2 2.21.3 and libboost_python311 only). The extension ABI is per
# CPython minor version, so any 3.11 interpreter loads it. We symlink ONLY that .so into
# VENV/gfal2-debian/ and add VENV's site-packages/gfal2-debian.pth: no
# --system-site-packages, no other Debian module leaks into the venv. Undo: delete both.
#
# Why not `pip install gfal2-python`: 1.13.0 and 1.12.2 do not compile against Debian's
# libgfal2 2.21.3 (they use gfalt_copy_get_bytes_transferred, gfalt_*_scitag, added in
# gfal2 2.22+); 1.12.0's cmake does not find a pyenv interpreter's site dir; all of them
# also need libboost-python-dev. (A 3-line sed patch of 1.12.2 does build, in ~20 s; not
# needed while the venv is 3.11.)
#
# CLI gotcha: /usr/bin/gfal-copy & co. run the first `python` on PATH that can import
# gfal2 and gfal2_util; with pyenv first on PATH they fail. Use
#   export GFAL_PYTHONBIN=/usr/bin/python3      (up.sh writes it into env.sh)
set -euo pipefail
BK_NAME=gfal2-python
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV=${1:?usage: gfal2-python.sh VENV}
[ -x "$VENV/bin/python" ] || die "$VENV/bin/python not found (create the venv first)"
VENV=$(cd "$VENV" && pwd)   # the .pth below must hold an absolute path
PY=$VENV/bin/python

# shellcheck disable=SC2046
ensure_pkgs $(bk_pkgs gfal2)      # one quick dpkg-query when all are installed

if "$PY" -c 'import gfal2; gfal2.creat_context()' 2>/dev/null; then
  ts "already importable in $VENV: $("$PY" -c 'import gfal2; print(gfal2.__file__, "libgfal2", gfal2.get_version())')"
else
  PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$PYVER" = 3.11 ] || die "Debian's python3-gfal2 is built for CPython 3.11; $VENV has $PYVER"
  SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  SO=$(find /usr/lib/python3/dist-packages -maxdepth 1 -name 'gfal2.cpython-311-*.so' -print -quit)
  [ -n "$SO" ] || die "Debian's gfal2 extension module not found in /usr/lib/python3/dist-packages"
  mkdir -p "$VENV/gfal2-debian"
  ln -sf "$SO" "$VENV/gfal2-debian/"
  echo "$VENV/gfal2-debian" >"$SITE/gfal2-debian.pth"
  "$PY" -c 'import gfal2; gfal2.creat_context()' || die "gfal2 still not importable in $VENV"
  ts "importable in $VENV: $("$PY" -c 'import gfal2; print(gfal2.__file__, "libgfal2", gfal2.get_version())')"
fi
ts "plugins: $(find /usr/lib/x86_64-linux-gnu/gfal2-plugins/ -name 'libgfal_plugin_*.so' -printf '%f\n' | sed 's/libgfal_plugin_//; s/\.so$//' | sort | tr '\n' ' ')"
ts "for the gfal-* CLI: export GFAL_PYTHONBIN=/usr/bin/python3"
