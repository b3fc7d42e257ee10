#!/bin/sh
echo "bazel coverage is unavailable offline; build with --copt=--coverage and run gcov" >&2
exit 1
