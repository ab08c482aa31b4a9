"""HTTPS on the verbs listener with client certificates (extender/server/tls.py), under the real
gunicorn, with certificates made at test time (trustme): what kube-scheduler's extender client
does (``enableHTTPS: true`` with ``tlsConfig``: a client certificate, our CA) is served; a client
without a certificate, with one of another CA, or speaking plain HTTP is refused in the
handshake; a rotated certificate is served without a restart."""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from benchmarks.harness import ROOT, Server, running_server

FILTER = (Path(__file__).parent / "golden" / "filter-nodes.request.json").read_bytes()


class PKI:
    """A CA, the extender's serving certificate and kube-scheduler's client certificate, as files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = trustme.CA()
        self.cert, self.key, self.client_ca = root / "tls.crt", root / "tls.key", root / "client-ca.crt"
        self.ca.cert_pem.write_to_path(str(self.client_ca))
        self.serve(self.ca.issue_cert("127.0.0.1", "localhost"))
        self.client = self.ca.issue_cert("kube-scheduler", common_name="system:kube-scheduler")

    def serve(self, leaf: trustme.LeafCert) -> None:
        """Write the serving certificate as the kubelet updates a mounted Secret: new files, then
        one rename, so a reader sees the old pair or the new one."""
        tmp = self.root / "new"
        tmp.mkdir(exist_ok=True)
        leaf.cert_chain_pems[0].write_to_path(str(tmp / "tls.crt"))
        leaf.private_key_pem.write_to_path(str(tmp / "tls.key"))
        os.replace(tmp / "tls.key", self.key)
        os.replace(tmp / "tls.crt", self.cert)

    def context(self, client: trustme.LeafCert | None) -> ssl.SSLContext:
        """kube-scheduler's side: trusts our CA, offers h2 and http/1.1 as Go's transport does."""
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        if client is not None:
            client.configure_cert(ctx)
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: PKI) -> Iterator[Server]:
    args = ("--no-api", "--tls-cert-file", str(pki.cert), "--tls-private-key-file", str(pki.key))
    env = {"EXTENDER_CLIENT_CA_FILE": str(pki.client_ca), "EXTENDER_HEADER_TIMEOUT_S": "2"}
    with running_server(*args, env=env) as s:
        yield s


def _filter(server: Server, ctx: ssl.SSLContext) -> tuple[int, str | None, bytes]:
    """A filter over HTTPS: status, the ALPN protocol chosen, the server certificate (DER)."""
    conn = http.client.HTTPSConnection(server.host, server.port, context=ctx, timeout=10)
    try:
        conn.request("POST", "/filter", FILTER, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert conn.sock is not None
        return resp.status, conn.sock.selected_alpn_protocol(), conn.sock.getpeercert(binary_form=True) or b""
    finally:
        conn.close()


def _closed(server: Server, reason: str) -> float:
    text = urllib.request.urlopen(f"{server.ops_url}/metrics", timeout=10).read().decode()
    found = re.search(rf'^extender_connections_closed_total{{reason="{reason}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_the_schedulers_client_is_served_over_http_1_1(server: Server, pki: PKI) -> None:
    status, alpn, _ = _filter(server, pki.context(pki.client))
    assert status == 200
    assert alpn == "http/1.1"  # Go offers h2 first; it gets HTTP/1.1, which the worker serves


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate", "TLS 1.1"])
def test_clients_without_the_right_certificate_are_refused(server: Server, pki: PKI, who: str) -> None:
    before = _closed(server, "tls_handshake")
    if who == "no certificate":
        ctx = pki.context(None)
    elif who == "another CA's certificate":
        ctx = pki.context(trustme.CA().issue_cert("kube-scheduler", common_name="system:kube-scheduler"))
    else:
        ctx = pki.context(pki.client)
        with warnings.catch_warnings():  # deprecated, which is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError, http.client.HTTPException)):
        # TLS 1.3: the client finishes its side of the handshake before the server has checked
        # the certificate; the refusal arrives as an alert on the first read
        _filter(server, ctx)
    deadline = time.monotonic() + 5
    while _closed(server, "tls_handshake") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _closed(server, "tls_handshake") == before + 1


def test_plain_http_to_the_tls_listener_is_closed_at_once(server: Server) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(FILTER), FILTER))
        t0 = time.monotonic()
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
        assert time.monotonic() - t0 < 2
        assert b"HTTP/1.1 200" not in data


def test_a_silent_tls_client_is_closed_after_the_header_deadline(server: Server, pki: PKI) -> None:
    """No ClientHello: the handshake is the loop's, so the connection holds no thread, and ends
    after EXTENDER_HEADER_TIMEOUT_S (2 s here)."""
    before = _closed(server, "tls_handshake")
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        t0 = time.perf_counter()
        assert _filter(server, pki.context(pki.client))[0] == 200
        assert time.perf_counter() - t0 < 2
        assert s.recv(10) == b""  # closed by the server
        assert time.perf_counter() - t0 >= 1.5
    assert _closed(server, "tls_handshake") == before + 1


def test_the_operations_listener_stays_plain_http(server: Server) -> None:
    with urllib.request.urlopen(f"{server.ops_url}/readyz", timeout=10) as r:
        assert r.status == 200


def test_a_rotated_certificate_is_served_without_a_restart(tmp_path: Path) -> None:
    pki = PKI(tmp_path)
    args = ("--no-api", "--tls-cert-file", str(pki.cert), "--tls-private-key-file", str(pki.key))
    env = {"EXTENDER_CLIENT_CA_FILE": str(pki.client_ca)}
    with running_server(*args, env=env) as server:
        ctx = pki.context(pki.client)
        first = _filter(server, ctx)[2]
        pki.serve(pki.ca.issue_cert("127.0.0.1", "localhost"))  # cert-manager renews it
        deadline = time.monotonic() + 10
        while (served := _filter(server, ctx)[2]) == first and time.monotonic() < deadline:
            time.sleep(0.2)
        assert served != first
        metrics = urllib.request.urlopen(f"{server.ops_url}/metrics", timeout=10).read().decode()
        assert 'extender_tls_reload_total{outcome="reloaded"} 1.0' in metrics
        pki.key.write_text("not a key\n")  # a broken renewal: the last good one is kept
        time.sleep(1.5)
        assert _filter(server, ctx)[2] == served
        metrics = urllib.request.urlopen(f"{server.ops_url}/metrics", timeout=10).read().decode()
        assert 'extender_tls_reload_total{outcome="error"} 1.0' in metrics
        assert "TLS files changed but do not load" in server.log_tail()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tls-cert-file", "/nonexistent/tls.crt", "--tls-private-key-file", "/nonexistent/tls.key"],
            "cannot read",
        ),
        (["--tls-cert-file", str(ROOT / "README.md")], "set both or neither"),
        (["--client-ca-file", str(ROOT / "README.md")], "client certificates need HTTPS"),
    ],
)
def test_tls_mistakes_are_start_up_errors(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "extender", "serve", "--no-api", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("EXTENDER_")},
    )
    assert proc.returncode == 2 and message in proc.stderr
