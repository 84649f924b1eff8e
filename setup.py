"""The one part of the build pyproject.toml cannot declare stably: the C fast path of
monitor.match.fold's folding (a C compiler and the Python headers are needed to install)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "monitor.match._speedups", ["monitor/match/_speedups.c"], extra_compile_args=["-O2"]
        )
    ]
)
