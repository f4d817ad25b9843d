#!/usr/bin/env bash
# screenshot.sh PAGE.html OUT.png [WIDTHxHEIGHT]: renders a local HTML page (e.g. the gallery
# of `egcam explain --gallery`) to a PNG with headless Chromium, to look at a result without
# a desktop. Installs the Debian chromium package when no Chromium is found.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: tools/screenshot.sh PAGE.html OUT.png [WIDTHxHEIGHT (default 1400x1000)]" >&2
  exit 2
fi
page="$1"
out="$2"
size="${3:-1400x1000}"
if [ ! -f "$page" ]; then
  echo "screenshot: $page: no such file" >&2
  exit 2
fi
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null; then browser="$b"; break; fi
done
if [ -z "$browser" ]; then
  echo "screenshot: installing chromium (Debian package)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >&2
  $SUDO apt-get install -y -q --no-install-recommends chromium >&2
  browser=chromium
fi
abs_page="$(cd "$(dirname "$page")" && pwd)/$(basename "$page")"
case "$out" in /*) abs_out="$out" ;; *) abs_out="$PWD/$out" ;; esac
tmp_profile="$(mktemp -d)"
trap 'rm -rf "$tmp_profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --user-data-dir="$tmp_profile" --window-size="${size/x/,}" \
  --screenshot="$abs_out" "file://$abs_page" >/dev/null 2>&1 || {
  echo "screenshot: $browser failed on $page" >&2
  exit 1
}
[ -s "$abs_out" ] || { echo "screenshot: $browser wrote no $abs_out" >&2; exit 1; }
echo "$abs_out"
