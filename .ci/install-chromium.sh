#!/bin/sh
# Makes sure the Chromium the console's browser test drives is installed.
#
# console's TestBrowser runs /usr/bin/chromium headless through chromedp
# (CONSOLE_CHROMIUM names another binary). This script installs Debian's
# chromium package with apt when the binary is missing, and is quick and
# silent when it is not. The test fails, rather than skips, without it.
set -eu

bin=${CONSOLE_CHROMIUM:-/usr/bin/chromium}

if [ "$(id -u)" -eq 0 ]; then
	sudo=
elif command -v sudo >/dev/null 2>&1; then
	sudo=sudo
else
	sudo=
fi

if [ ! -x "$bin" ]; then
	echo "install-chromium: installing chromium with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
	if [ ! -x "$bin" ]; then
		echo "install-chromium: chromium installed, but $bin is missing" >&2
		exit 1
	fi
fi

echo "install-chromium: $("$bin" --version 2>/dev/null || echo "$bin")"
