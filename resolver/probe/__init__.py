"""The probe: this machine as a host snapshot (`Host`), seen the way the dynamic loader sees it.

One module per source, each split into I/O and a pure parser: `platforms` (platform, OS, glibc, FFmpeg),
`nvml` (driver and GPUs), `ldcache` (/etc/ld.so.cache), `installed` (distributions, torch's build, the
native consumers), `libscan` (the library files), `elf` and `loader` (what each consumer asks the loader
for, and which file glibc picks). `compose` runs them and fills in a `Host`. The engine sees the probe
only through that `Host` (envsolve.resolver.host).
"""

from envsolve.resolver.probe.compose import Probe, probe, probe_host

__all__ = ["Probe", "probe", "probe_host"]
