#!/usr/bin/env python3
"""Fails if a C++ source or header is in one of fiberloop's builds and not
the other: Bazel's srcs and hdrs of every target (bazel query) against the
sources of every CMake target (CMake's file API, on a fresh configure with
TLS and io_uring on, so that no optional source is left out).

The libFuzzer targets (fuzz/) are Bazel's only: they need clang's libFuzzer
(--config=fuzz).

    tools/check_build_drift.py            (from the repository's root; CI runs it)
"""
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BAZEL_ONLY_DIRS = ("fuzz/",)
SUFFIXES = (".cc", ".h")


def bazel_sources():
    out = subprocess.run(
        [str(ROOT / "bazelw"), "query", "labels(srcs, //...) union labels(hdrs, //...)",
         "--output=label"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    files = set()
    for label in out.split():
        if not label.startswith("//"):
            continue  # another repository's (@system, @rules_cc)
        package, _, name = label[2:].partition(":")
        path = f"{package}/{name}" if package else name
        if path.endswith(SUFFIXES) and not path.startswith(BAZEL_ONLY_DIRS):
            files.add(path)
    return files


def cmake_sources():
    with tempfile.TemporaryDirectory() as build:
        query = pathlib.Path(build, ".cmake/api/v1/query/codemodel-v2")
        query.parent.mkdir(parents=True)
        query.touch()
        configure = subprocess.run(["cmake", "-S", str(ROOT), "-B", build, "-DFIBERLOOP_TLS=ON",
                                    "-DFIBERLOOP_IO_URING=ON"], capture_output=True, text=True)
        if configure.returncode != 0:
            sys.exit("check_build_drift: CMake's configure failed:\n" + configure.stdout +
                     configure.stderr)
        reply = pathlib.Path(build, ".cmake/api/v1/reply")
        index = json.loads(next(reply.glob("index-*.json")).read_text())
        codemodel = json.loads((reply / index["reply"]["codemodel-v2"]["jsonFile"]).read_text())
        files = set()
        for target in codemodel["configurations"][0]["targets"]:
            detail = json.loads((reply / target["jsonFile"]).read_text())
            for source in detail.get("sources", []):
                path = source["path"]
                if path.endswith(SUFFIXES) and not pathlib.Path(path).is_absolute():
                    files.add(path)
        return files


def main():
    bazel, cmake = bazel_sources(), cmake_sources()
    only_bazel, only_cmake = sorted(bazel - cmake), sorted(cmake - bazel)
    for path in only_bazel:
        print(f"{path}: in a Bazel target, in no CMake target (add it to a CMakeLists.txt)")
    for path in only_cmake:
        print(f"{path}: in a CMake target, in no Bazel target (add it to a BUILD file)")
    if only_bazel or only_cmake:
        return 1
    print(f"check_build_drift: the Bazel and CMake builds name the same {len(bazel)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
