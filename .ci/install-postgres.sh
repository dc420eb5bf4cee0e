#!/bin/sh
# Makes sure the PostgreSQL server binaries the tests need are installed.
#
# store/storetest starts a throwaway server per test binary from the local
# initdb and postgres (on PATH, or in Debian's /usr/lib/postgresql/*/bin)
# unless OSSJOBWATCH_TEST_DATABASE_URL names one. This script installs them
# with apt when they are missing, and is quick and silent when they are not.
# When the tests run as root, storetest runs PostgreSQL (which refuses root)
# as the "postgres" or else the "nobody" user: make sure one exists.
set -eu

find_initdb() {
	if command -v initdb >/dev/null 2>&1; then
		command -v initdb
		return 0
	fi
	# Newest version first: /usr/lib/postgresql/<version>/bin.
	for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5,5 -rn); do
		if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
			echo "$dir/initdb"
			return 0
		fi
	done
	return 1
}

if [ "$(id -u)" -eq 0 ]; then
	sudo=
else
	sudo=sudo
fi

if ! initdb=$(find_initdb); then
	echo "install-postgres: installing PostgreSQL with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
	if ! initdb=$(find_initdb); then
		echo "install-postgres: postgresql installed, but no initdb found" >&2
		exit 1
	fi
fi

if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1 && ! id nobody >/dev/null 2>&1; then
	echo "install-postgres: adding a system user postgres to run the test server as" >&2
	useradd --system --no-create-home --shell /usr/sbin/nologin postgres
fi

echo "install-postgres: $("$initdb" --version)"
