"""Real stream servers on 127.0.0.1 for the tests: nginx with its RTMP module, Debian's RTSP
relay (rtsp-server-perl) and srt-tools' srt-live-transmit.

Each runs as a child process on ports the kernel picked, with its configuration written
under the test's tmp_path; starting waits (bounded) until the server accepts connections,
stopping is bounded too (SIGTERM, then SIGKILL). A server whose program is not installed
skips the test, naming the Debian package that brings it (``.ci/run`` may install them where
apt is available)::

    apt-get install nginx-light libnginx-mod-rtmp rtsp-server-perl srt-tools

The fixtures (``nginx_rtmp``, ``rtsp_relay``) are pytest fixtures; a test module imports
the ones it uses.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

try:
    from streams import free_port, wait_until
except ImportError:  # tests/ imported as a package
    from tests.streams import free_port, wait_until

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
# Where Debian installs nginx's dynamic RTMP module (libnginx-mod-rtmp).
NGINX_RTMP_MODULES = ("/usr/lib/nginx/modules/ngx_rtmp_module.so", "/usr/share/nginx/modules/ngx_rtmp_module.so")


def require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (Debian package {package}): apt-get install {package} to run this test")
    return path


def tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Server:
    """A server process of ours; ``stop`` is bounded and idempotent."""

    name: str
    proc: subprocess.Popen
    log: Path
    ports: dict[str, int] = field(default_factory=dict)

    def ready(self, check, timeout: float = START_TIMEOUT):
        """Wait (bounded) until ``check()`` says the server serves; stopped if it never does."""

        def serving() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} while starting:\n{self.log_text()}")
            return check()

        try:
            wait_until(serving, timeout, f"{self.name} to accept connections", step=0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)


def _spawn(cmd: list[str], log: Path, **kw) -> subprocess.Popen:
    out = open(log, "ab")
    try:
        # Its own process group: a stray child of the server cannot outlive the test.
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    finally:
        out.close()


# ----------------------------------------------------------------------------- nginx-rtmp
@dataclass
class NginxRtmp(Server):
    app: str = "live"

    def url(self, key: str = "cam") -> str:
        return f"rtmp://127.0.0.1:{self.ports['rtmp']}/{self.app}/{key}"

    def players(self, key: str = "cam") -> int:
        """Players that asked for ``key`` so far (from the server's log)."""
        return self.log_text().count(f"play: name='{key}'")


def start_nginx_rtmp(workdir: Path, app_settings: str = "", server_settings: str = "") -> NginxRtmp:
    """nginx with one RTMP application ``live`` (``live on`` plus ``app_settings``, nginx
    syntax, e.g. ``"play_restart on;"``; ``server_settings`` go in its ``server``, e.g.
    ``"out_queue 16;"``), one process, logging at info level."""
    nginx = require("nginx", "nginx-light")
    module = next((m for m in NGINX_RTMP_MODULES if os.path.exists(m)), None)
    if module is None:
        pytest.skip("nginx's RTMP module is not installed (Debian package libnginx-mod-rtmp)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "nginx.log"
    conf = workdir / "nginx.conf"
    conf.write_text(f"""
load_module {module};
daemon off;
master_process off;
worker_processes 1;
error_log {log} info;
pid {workdir / 'nginx.pid'};
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        {server_settings}
        application live {{
            live on;
            {app_settings}
        }}
    }}
}}
""")
    proc = _spawn([nginx, "-p", str(workdir), "-c", str(conf)], workdir / "nginx.out")
    return NginxRtmp("nginx-rtmp", proc, log, {"rtmp": port}).ready(lambda: tcp_accepts(port))


def _serving(server: Server):
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nginx_rtmp(tmp_path):
    yield from _serving(start_nginx_rtmp(tmp_path / "nginx"))


# ----------------------------------------------------------------------------- RTSP relay
@dataclass
class RtspRelay(Server):
    """rtsp-server-perl: a publisher ANNOUNCEs and RECORDs on the source port, players
    PLAY from the client port. RTP goes over UDP only (a player asking for TCP gets
    ``400 Bad Request``)."""

    def publish_url(self, path: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.ports['source']}/{path}"

    def play_url(self, path: str = "cam") -> str:
        return f"rtsp://127.0.0.1:{self.ports['client']}/{path}"

    def players(self) -> int:
        """PLAY requests the relay has taken so far (its trace log names every request line;
        it answers and starts forwarding in the same event, before it reads anything else)."""
        return sum(1 for line in self.log_text().splitlines() if "listener: >> PLAY " in line)


def _free_udp_range(n: int) -> int:
    """An even port with ``n`` free UDP ports from it (for the relay's RTP/RTCP pairs)."""
    for _ in range(50):
        base = free_port(socket.SOCK_DGRAM) & ~1
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free UDP port range on 127.0.0.1")


def start_rtsp_relay(workdir: Path) -> RtspRelay:
    program = require("rtsp-server-perl", "rtsp-server-perl")
    workdir.mkdir(parents=True, exist_ok=True)
    client, source = free_port(), free_port()
    # Each stream set up takes the next two ports from here, publisher and players alike.
    rtp = _free_udp_range(16)
    # Log level 5 traces each request line (players() counts the PLAYs); Perl buffers a file's
    # output in blocks, so the script runs with its output flushed line by line.
    flushed = ["perl", "-e", "$| = 1; $0 = shift; do $0; die $@ if $@", program]
    proc = _spawn([*flushed, "--clientport", str(client), "--serverport", str(source), "--rtp_start_port", str(rtp),
                   "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1", "--loglevel", "5"],
                  workdir / "rtsp.log", cwd=workdir)
    server = RtspRelay("rtsp-server-perl", proc, workdir / "rtsp.log", {"client": client, "source": source, "rtp": rtp})
    return server.ready(lambda: tcp_accepts(client) and tcp_accepts(source))


@pytest.fixture
def rtsp_relay(tmp_path):
    yield from _serving(start_rtsp_relay(tmp_path / "rtsp"))


# ----------------------------------------------------------------------------- SRT
def start_srt_live_transmit(workdir: Path, source: str, target: str, name: str = "srt-live-transmit") -> Server:
    """``srt-live-transmit SOURCE TARGET`` (e.g. ``udp://:PORT`` to
    ``srt://127.0.0.1:PORT?mode=caller``): SRT's own relay, used as the SRT end of a test.
    It is ready as soon as it runs (a caller connects when data flows; a listener binds at
    once: wait for its UDP port with :func:`streams.udp_port_bound`)."""
    program = require("srt-live-transmit", "srt-tools")
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / f"{name}.log"
    # -a no: no automatic reconnection, so it ends with its connection; -v: log connections.
    proc = _spawn([program, "-a", "no", "-v", source, target], log)
    time.sleep(0.05)
    server = Server(name, proc, log)
    if proc.poll() is not None:
        raise AssertionError(f"{name} exited with {proc.returncode}:\n{server.log_text()}")
    return server
