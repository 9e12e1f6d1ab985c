"""stompd_helpers: shared pieces of the daemon tests: start the real stompd binary, a tiny
raw-socket STOMP client, free ports, temp dirs. Tests end only the processes they started,
by pid, and remove their temp dirs."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("BUILD", "build")
STOMPD = os.path.join(BUILD, "stompd")
TIMEOUT = 10


def fail(msg):
    sys.stderr.write("FAIL: %s\n" % msg)
    raise SystemExit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="stompd-test-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(args, stdin=None, timeout=TIMEOUT, cwd=None):
    """Run stompd to completion: (exit code, stdout, stderr)."""
    p = subprocess.run([os.path.abspath(STOMPD)] + args, input=stdin, capture_output=True,
                       text=True, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


class Foreground:
    """stompd in the foreground; .port from its 'listening on' line."""

    def __init__(self, args, env=None):
        # stderr to a file: a pipe nobody reads could fill up and stall the broker.
        self.errfile = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([STOMPD] + args, stdout=subprocess.PIPE,
                                     stderr=self.errfile, text=True, env=env)
        line = self.proc.stdout.readline()
        m = re.match(r"stompd: listening on (\S+):(\d+)", line)
        if not m:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            err = self.stderr_text()
            self.kill()
            fail("stompd did not report its port: %r %r" % (line, err))
        self.port = int(m.group(2))
        self.pid = self.proc.pid

    def stderr_text(self):
        self.errfile.seek(0)
        return self.errfile.read()

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("stompd did not exit within %ss" % timeout)

    def stop(self, timeout=TIMEOUT):
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout=TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return False


def wait_for(pred, timeout=TIMEOUT):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    return None


def read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


class Client:
    """A raw STOMP 1.2 client, enough for the daemon tests."""

    def __init__(self, port, login=None, passcode=None, version="1.2", connect=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        if connect:
            h = {"accept-version": version, "host": "localhost", "heart-beat": "0,0"}
            if login is not None:
                h["login"] = login
            if passcode is not None:
                h["passcode"] = passcode
            self.send_frame("CONNECT", h)
            self.connected = self.read_frame()

    def send_frame(self, cmd, headers, body=b""):
        data = cmd + "\n" + "".join("%s:%s\n" % kv for kv in headers.items()) + "\n"
        self.sock.sendall(data.encode() + body + b"\0")

    def read_frame(self, timeout=TIMEOUT):
        """(command, headers, body), or None when the peer closed or timeout passed."""
        self.sock.settimeout(timeout)
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            end = self.buf.find(b"\0")
            if end >= 0:
                raw, self.buf = self.buf[:end], self.buf[end + 1:]
                head, _, body = raw.partition(b"\n\n")
                lines = head.decode().split("\n")
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers.setdefault(k, v)
                return lines[0], headers, body
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def closed(self, timeout=TIMEOUT):
        """True when the peer closes (after any frames)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()
