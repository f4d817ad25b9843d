#!/usr/bin/env bash
# install_test.sh: `cmake --install` of a build into a scratch prefix: the tool runs from
# there, the public headers and both libraries are there, a program compiles and links
# against the installed headers and libegcam.so, and the Python module imports from there
# and finds the installed libegcam.so (when NumPy is installed).
#   test/install_test.sh BUILD_DIR PYTHON
set -uo pipefail
build="$1"; py="${2:-}"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }
cmake --install "$build" --prefix "$prefix" >"$prefix/install.log" 2>&1 || { cat "$prefix/install.log"; exit 1; }
libdir="$(cd "$prefix" && ls -d lib lib64 lib/* 2>/dev/null | while read -r d; do [ -f "$prefix/$d/libegcam.so" ] && echo "$d"; done | head -n 1)"
[ -n "$libdir" ] || fail "no libegcam.so under $prefix"
"$prefix/bin/egcam" --version >/dev/null || fail "the installed egcam does not run"
[ -f "$prefix/include/egcam/explain.h" ] || fail "no include/egcam/explain.h"
[ -f "$prefix/$libdir/libegcam.a" ] || fail "no libegcam.a"
ls "$prefix"/share/doc/*/PYTHON.md >/dev/null 2>&1 || fail "no docs"
cat >"$prefix/t.c" <<'C'
#include <egcam/explain.h>
#include <stdio.h>
int main(void) { printf("%s\n", egc_method_name(EGC_METHOD_EXPECTED_GRADCAM)); return 0; }
C
if cc -std=c11 -I "$prefix/include" "$prefix/t.c" -L "$prefix/$libdir" -legcam \
    -Wl,-rpath,"$prefix/$libdir" -o "$prefix/t" 2>"$prefix/cc.log"; then
    [ "$("$prefix/t")" = expected-gradcam ] || fail "the program linked against libegcam.so gives the wrong name"
else
    cat "$prefix/cc.log" >&2
    fail "a program does not compile and link against the installed headers and libegcam.so"
fi
if [ -n "$py" ] && "$py" -c 'import numpy' 2>/dev/null; then
    got="$(cd / && EGC_BLAS_AUTO=0 PYTHONPATH="$prefix/$libdir/egcam/python" "$py" -c \
        'import egcam, os; print(os.path.realpath(egcam.LIBRARY))')"
    [ "$got" = "$(realpath "$prefix/$libdir/libegcam.so")" ] ||
        fail "the installed Python module loads '$got', not the installed libegcam.so"
fi
[ $failed -eq 0 ] && echo "install: ok"
exit $failed
