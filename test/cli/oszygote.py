"""A pre-forked runner of the openstack CLI for the tests in test/cli.

/usr/bin/openstack is `sys.exit(openstackclient.shell.main())`. Most of
each call's 1.5-2 s goes to importing openstackclient, keystoneauth and the
command plugins. This process imports them once, then serves each request
in a child forked from it: the child takes the request's environment,
arguments and output files and runs the same main(), so the CLI code that
runs is the one the script runs, minus the repeated imports.

Protocol (one connection per call, on the Unix socket given as argv[1]):
the client sends one JSON line {"argv": [...], "env": {...}, "stdout":
path, "stderr": path}; the child answers with its pid on one line, runs
the command, then writes its exit code on a second line and exits.
"""

import importlib.metadata
import json
import os
import signal
import socket
import sys

# cliff names the application after sys.argv[0] when it is imported.
SOCKET = sys.argv[1]
sys.argv = ["/usr/bin/openstack"]

from openstackclient import shell  # noqa: E402

# The command plugins the tests use, loaded before forking (cliff would
# load each one in every call).
GROUPS = (
    "openstack.cli",
    "openstack.cli.base",
    "openstack.common",
    "openstack.network.v2",
    "openstack.neutronclient.v2",
    "openstack.identity.v3",
)


def warm():
    for group in GROUPS:
        for ep in importlib.metadata.entry_points(group=group):
            try:
                ep.load()
            except Exception:  # a plugin that cannot load here fails in its call as in the script
                pass


def child(conn):
    f = conn.makefile("rwb")
    req = json.loads(f.readline())
    f.write(b"%d\n" % os.getpid())
    f.flush()
    os.environ.clear()
    os.environ.update(req["env"])
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, fd)
        os.close(out)
    sys.argv = ["openstack"] + req["argv"]
    code = 1
    try:
        code = shell.main(req["argv"])
    except SystemExit as e:
        code = e.code
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        code = 1
    f.write(b"%d\n" % code)
    f.flush()
    os._exit(code)


def main():
    warm()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(SOCKET)
    srv.listen(64)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        if os.fork() == 0:
            srv.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                child(conn)
            finally:
                os._exit(1)
        conn.close()


if __name__ == "__main__":
    main()
