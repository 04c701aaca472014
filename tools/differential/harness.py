"""Servers, databases and HTTP for the differential test (stdlib only).

Each seed gets two fresh PostgreSQL databases, one per server, and its own
pair of server processes, each started in a session of its own so that it
(and only it) can be stopped by its process group id.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Postgres:
    """CREATE / DROP DATABASE through psql (user root, trust)."""

    def __init__(self, host='127.0.0.1', port=5432, user='root'):
        self.host, self.port, self.user = host, port, user

    def url(self, database):
        return 'postgres://%s@%s:%d/%s' % (self.user, self.host, self.port, database)

    def _psql(self, sql):
        subprocess.run(
            ['psql', '-q', '-h', self.host, '-p', str(self.port), '-U', self.user,
             '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def create(self, database):
        self.drop(database)
        self._psql('CREATE DATABASE "%s"' % database)

    def drop(self, database):
        self._psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % database)


class Response:
    __slots__ = ('status', 'headers', 'body', 'json')

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case name -> value
        self.body = body                # bytes
        try:
            self.json = json.loads(body.decode('utf-8')) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower())

    def summary(self, limit=600):
        text = self.body.decode('utf-8', 'replace')
        if len(text) > limit:
            text = text[:limit] + '...(%d bytes)' % len(self.body)
        return '%d %s' % (self.status, text)


class Server:
    """One server process on its own port and database."""

    def __init__(self, name, argv, env, port, log_path):
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.log_path = log_path
        self.proc = None

    def start(self, timeout=180):
        log = open(self.log_path, 'ab')
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('%s exited with %s during start-up; see %s'
                                   % (self.name, self.proc.returncode, self.log_path))
            try:
                if self.request('GET', '/', {}, None, timeout=5).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError('%s did not answer GET / within %ds; see %s'
                           % (self.name, timeout, self.log_path))

    def stop(self, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid   # its own session: pgid == pid
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                # uwsgi workers may linger for a moment after the master.
                time.sleep(0.2)
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    return
            except subprocess.TimeoutExpired:
                pass

    def request(self, method, path, headers, body, timeout=60):
        """One request on a new connection (uwsgi's router closes it anyway)."""
        conn = http.client.HTTPConnection('127.0.0.1', self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
            for key, value in headers.items():
                conn.putheader(key, value)
            if body is not None:
                conn.putheader('Content-Length', str(len(body)))
            elif method in ('PUT', 'POST', 'PATCH'):
                conn.putheader('Content-Length', '0')
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            hdrs = {}
            for key, value in resp.getheaders():
                key = key.lower()
                hdrs[key] = hdrs[key] + ', ' + value if key in hdrs else value
            return Response(resp.status, hdrs, data)
        finally:
            conn.close()
