"""admin_helpers: what the management API tests share: a stompd started with its
management listener on a free port (and an auth file of one user), and an HTTP client over
urllib that returns status, headers and the parsed JSON."""
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
from stompd_helpers import STOMPD, TIMEOUT, check, fail  # noqa: E402

USER, PASSCODE = "admin", "s3cret-admin"


def auth_file(tmp, users=((USER, PASSCODE),)):
    """An auth file with SHA-512 crypt hashes (stompd takes them as it takes Argon2id ones;
    they are checked in a millisecond, which keeps these tests quick)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    path = os.path.join(tmp, "users")
    with open(path, "w") as f:
        for login, passcode in users:
            f.write("%s = %s\n" % (login, crypt.crypt(passcode, crypt.mksalt(crypt.METHOD_SHA512))))
    return path


class Broker:
    """stompd in the foreground with admin_listen on a free port: .port, .admin."""

    def __init__(self, args):
        self.errfile = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [STOMPD, "--port", "0", "--no-ws", "--set", "admin_listen=127.0.0.1:0"] + args,
            stdout=subprocess.PIPE, stderr=self.errfile, text=True)
        self.port = self.admin = None
        while self.admin is None:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(timeout=TIMEOUT)
                fail("stompd did not report its ports: %s" % self.stderr_text())
            m = re.match(r"stompd: (admin )?listening on \S+:(\d+)", line)
            if m and m.group(1):
                self.admin = int(m.group(2))
            elif m:
                self.port = int(m.group(2))
        self.url = "http://127.0.0.1:%d" % self.admin

    def stderr_text(self):
        self.errfile.seek(0)
        return self.errfile.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("stompd did not stop")


def http(b, method, path, user=USER, passcode=PASSCODE):
    """(status, headers, body as JSON or text)"""
    req = urllib.request.Request(b.url + path, method=method)
    if user is not None:
        cred = base64.b64encode(("%s:%s" % (user, passcode)).encode()).decode()
        req.add_header("Authorization", "Basic " + cred)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            status, headers, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    text = raw.decode("utf-8")
    if headers.get("Content-Type", "").startswith("application/json"):
        return status, headers, json.loads(text)
    return status, headers, text


def get(b, path, **kw):
    status, _, body = http(b, "GET", path, **kw)
    check(status == 200, "GET %s: %d %r" % (path, status, body))
    return body


def dest(b, name):
    for d in get(b, "/api/destinations"):
        if d["name"] == name:
            return d
    return None
