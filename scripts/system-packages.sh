#!/usr/bin/env bash
# The Debian packages aidrill's tests need, installed when missing. README's test
# command (and so .ci/run) runs this first, so a fresh machine needs nothing by hand.
#
#   chromium        headless browser: the quarterly report renders without errors
#   poppler-utils   pdftoppm: every page of report.pdf is rendered and checked
#   libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core
#                   what WeasyPrint draws and subsets the PDF's fonts with
#
# As root it installs with apt-get; otherwise through `sudo -n` when that works; if it
# can do neither, it names the missing packages and the command to install them, and
# fails, so no test fails later for a reason that is not the code's.
set -euo pipefail

debs=(chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b
      libharfbuzz-subset0 fonts-dejavu-core)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "system-packages: not a Debian-based system; install the equivalents of: ${debs[*]}" >&2
  exit 0
fi

missing=()
for deb in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "ok installed" || missing+=("$deb")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo -n)
else
  echo "system-packages: missing ${missing[*]}; install them with:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
