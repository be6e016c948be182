#!/bin/sh
# /bin/kmx-suite TEST_BINARY: one test_run suite in the kernel matrix's guest
# (see init.sh). Its first test runs alone first: when that fails (typically
# the kernel rejects the program), every other test would fail the same way,
# each after another verification that takes a minute or more under TCG, so
# they are skipped.
first=$("$1" --list --format terse 2>/dev/null | sed -n 's/: test$//p' | head -n 1)
if [ -n "$first" ]; then
    echo "first test alone: $first"
    if ! "$1" --exact "$first" --color never; then
        echo "the first test failed: the remaining tests of $(basename "$1") are skipped"
        exit 1
    fi
    exec "$1" --color never --exact --skip "$first"
fi
exec "$1" --color never
