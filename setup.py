"""Package discovery across the three source folders; everything else is in pyproject.toml."""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages("sdk", include=["edgeprof", "edgeprof.*"]),
        *find_packages("device_agents", include=["edgeprof_agent", "edgeprof_agent.*"]),
        "edgeprof.builtin_targets",
    ]
)
