#!/bin/sh
# python314.sh - install CPython 3.14 from Debian unstable into a private prefix.
#
# Used by tests and CI: pmt-top must be tested against 3.14 (PEP 768 remote
# debugging) on a Debian stable machine that has no 3.14. Nothing outside
# PREFIX (and a private apt state directory inside it) is touched: the .debs
# are fetched with `apt-get download` against a private sources list and
# unpacked with `dpkg -x`; the interpreter is pointed at the unpacked, newer
# libc with patchelf. A wrapper PREFIX/bin/python3.14 sets PYTHONHOME and
# execs the real binary, so a process started through it is python3.14.
#
# Usage: tests/tools/python314.sh [PREFIX]   (default /opt/pmt-top-py314)
# Exit status: 0 installed (or already there), 1 on any failure, with one line
# on stderr saying why.
set -eu

PREFIX=${1:-${PMT_PY314_PREFIX:-/opt/pmt-top-py314}}
WRAPPER=$PREFIX/bin/python3.14
REAL=$PREFIX/usr/bin/python3.14
LIBDIR=$PREFIX/usr/lib/x86_64-linux-gnu
MIRROR=${PMT_PY314_MIRROR:-http://deb.debian.org/debian}

fail() {
	echo "python314.sh: $*" >&2
	exit 1
}

# Fast path: already installed and working.
if [ -x "$WRAPPER" ] && "$WRAPPER" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 14))' 2>/dev/null; then
	echo "python314.sh: CPython $("$WRAPPER" -c 'import platform; print(platform.python_version())') already installed at $WRAPPER"
	exit 0
fi

[ "$(uname -m)" = x86_64 ] || fail "only x86_64 is supported (this machine is $(uname -m))"
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: this installer needs a Debian-based system"
command -v dpkg >/dev/null 2>&1 || fail "dpkg not found: this installer needs a Debian-based system"
command -v patchelf >/dev/null 2>&1 || fail "patchelf not found: run 'apt-get install patchelf'"

mkdir -p "$PREFIX" || fail "cannot create $PREFIX (run as root or pass a writable PREFIX)"
APT=$PREFIX/apt
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/debs" "$APT/etc"
echo "deb $MIRROR sid main" >"$APT/etc/sources.list"
: >"$APT/etc/status"

set -- \
	-o Dir::Etc::SourceList="$APT/etc/sources.list" \
	-o Dir::Etc::SourceParts=/dev/null \
	-o Dir::State::Lists="$APT/lists" \
	-o Dir::State::Status="$APT/etc/status" \
	-o Dir::Cache="$APT/cache" \
	-o APT::Architecture=amd64 \
	-o Debug::NoLocking=1

if ! apt-get "$@" -q update >"$APT/update.log" 2>&1; then
	fail "cannot reach the Debian archive ($MIRROR sid); see $APT/update.log"
fi
if grep -q '^\(Err\|W: Failed\)' "$APT/update.log"; then
	fail "cannot reach the Debian archive ($MIRROR sid); see $APT/update.log"
fi

PKGS="python3.14 python3.14-minimal libpython3.14-minimal libpython3.14-stdlib
libpython3.14 python3.14-dev libpython3.14-dev libc6 libssl3t64 libexpat1 zlib1g
libffi8 libzstd1 liblzma5 libbz2-1.0 libsqlite3-0 libuuid1 libncursesw6 libtinfo6
libreadline8t64 libmpdec4 libgcc-s1"
# libmpdec4 (_decimal) and libgcc-s1 (thread cancellation) are pulled in at run time.

cd "$APT/debs"
rm -f ./*.deb
for p in $PKGS; do
	if ! apt-get "$@" -q download "$p" >>"$APT/download.log" 2>&1; then
		case $p in
		libmpdec4 | libgcc-s1) ;; # optional
		*) fail "cannot download the Debian package $p from $MIRROR sid; see $APT/download.log" ;;
		esac
	fi
done
for d in ./*.deb; do
	dpkg -x "$d" "$PREFIX" || fail "cannot unpack $d"
done

[ -x "$REAL" ] || fail "the unpacked packages contain no $REAL"
[ -e "$LIBDIR/ld-linux-x86-64.so.2" ] || fail "the unpacked libc6 has no $LIBDIR/ld-linux-x86-64.so.2"
patchelf --set-interpreter "$LIBDIR/ld-linux-x86-64.so.2" --force-rpath \
	--set-rpath "$LIBDIR" "$REAL" || fail "patchelf failed on $REAL"

mkdir -p "$PREFIX/bin"
tmp=$WRAPPER.tmp.$$
cat >"$tmp" <<WRAP
#!/bin/sh
# Runs the private CPython 3.14 (installed by tests/tools/python314.sh).
PYTHONHOME='$PREFIX/usr'
export PYTHONHOME
exec '$REAL' "\$@"
WRAP
chmod 755 "$tmp"
mv "$tmp" "$WRAPPER"
ln -sf python3.14 "$PREFIX/bin/python3"

"$WRAPPER" -c 'import sys, ssl, sqlite3, ctypes; assert sys.version_info[:2] == (3, 14)' 2>"$APT/check.log" ||
	fail "the installed interpreter does not start; see $APT/check.log"
rm -rf "$APT/debs" "$APT/cache"
echo "python314.sh: installed CPython $("$WRAPPER" -c 'import platform; print(platform.python_version())') at $WRAPPER"
