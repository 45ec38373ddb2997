#!/usr/bin/env bash
# Runs the native parts under sanitizers: every tests/native/sanitize_*.sh,
# in name order.  Exits non-zero if any of them reports a problem.
# (`make test-native` calls this script.)
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
found=0
for part in "$here"/sanitize_*.sh; do
    [ -e "$part" ] || continue
    found=1
    echo "=== $(basename "$part")"
    if ! bash "$part"; then
        echo "FAILED: $(basename "$part")"
        status=1
    fi
done
if [ "$found" = 0 ]; then
    echo "no tests/native/sanitize_*.sh found" >&2
    exit 1
fi
[ "$status" = 0 ] && echo "all sanitizer runs passed"
exit "$status"
