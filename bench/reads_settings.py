"""Settings of bench/reads.py's server: the project's own, with the bench's URLconf, which adds
the bare views beside the real API. Only the benchmark loads this module."""

from sbt_site.settings import *  # noqa: F403 - the project's settings, unchanged but one

ROOT_URLCONF = "bench.reads_urls"
