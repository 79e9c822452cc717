"""The child side of the sandboxed interpreter: run as `python -I -S -u sandbox_runner.py`.

Standard library only (it runs with no site-packages and no access to reasonact). It reads one
JSON header line and then the user's code from stdin, and before running the code, in order:

1. (namespace mode, still root inside fresh net/mount/pid namespaces) makes every mount
   read-only except the scratch directory, and keeps the Python installation readable for the
   unprivileged user (a tmpfs over an untraversable ancestor such as /root, the prefix re-bound
   inside it at the same path);
2. (when root) drops to uid/gid 65534 so file permissions and RLIMIT_NPROC apply;
3. sets hard resource limits (CPU seconds, address space, processes, file size, open files, core);
4. (optional) arms an audit hook (PEP 578) that refuses process creation, sockets, ctypes,
   writes outside scratch, other processes' /proc entries and gc introspection, and removes the
   modules used above from `sys.modules` so re-importing them raises the `import` event.

The code then runs as `__main__`; the value of a trailing expression is printed (as a REPL
would). An uncaught exception prints its traceback to stderr and exits with status 1.
"""

import ast
import json
import os
import resource
import sys
import traceback

NOBODY = 65534
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
BLOCKED_EVENTS = {
    "os.system": "running shell commands",
    "os.exec": "exec of another program",
    "os.posix_spawn": "spawning processes",
    "os.spawn": "spawning processes",
    "os.fork": "forking processes",
    "os.forkpty": "forking processes",
    "subprocess.Popen": "starting subprocesses",
    "pty.spawn": "spawning processes",
    "os.kill": "signalling processes",
    "os.killpg": "signalling processes",
    "socket.__new__": "network access (creating sockets)",
    "socket.getaddrinfo": "network access (name resolution)",
    "ctypes.dlopen": "loading native code (ctypes)",
    "ctypes.dlsym": "loading native code (ctypes)",
    "ctypes.cdata": "raw memory access (ctypes)",
    "gc.get_objects": "gc introspection",
    "gc.get_referrers": "gc introspection",
    "gc.get_referents": "gc introspection",
}
BLOCKED_MODULES = {
    "ctypes": "ctypes",
    "_ctypes": "ctypes",
    "subprocess": "subprocess",
    "_posixsubprocess": "subprocess",
    "multiprocessing": "multiprocessing",
    "_multiprocessing": "multiprocessing",
    "socket": "network access (socket)",
    "_socket": "network access (socket)",
    "ssl": "network access (ssl)",
    "_ssl": "network access (ssl)",
    "pty": "pseudo-terminals",
}
PATH_EVENTS = {  # event → index of the path argument; all of them modify the filesystem
    "os.remove": 0,
    "os.rmdir": 0,
    "os.mkdir": 0,
    "os.rename": 0,
    "os.chmod": 0,
    "os.chown": 0,
    "os.link": 1,
    "os.symlink": 1,
    "os.truncate": 0,
    "os.utime": 0,
    "shutil.rmtree": 0,
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _mounts() -> list[str]:
    """Mount points, innermost last (from /proc/self/mountinfo; octal escapes decoded)."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p.encode().decode("unicode_escape") for p in points]


def isolate_filesystem(scratch: str) -> None:
    """Every mount read-only except `scratch`; the interpreter and scratch stay reachable for uid 65534
    (an untraversable ancestor is covered by a tmpfs holding just those paths, re-bound by descriptor)."""
    import ctypes  # removed from sys.modules before user code runs

    libc = ctypes.CDLL(None, use_errno=True)

    def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
        args = [None if x is None else x.encode() for x in (source, target, fstype, data)]
        if libc.mount(args[0], args[1], args[2], flags, args[3]) != 0:
            raise OSError(ctypes.get_errno(), f"mount {target!r}: {os.strerror(ctypes.get_errno())}")

    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we do propagates to the host
    mount(scratch, scratch, None, MS_BIND)  # its own mount, so it can stay writable
    exposed = {path: hidden_ancestor(path) for path in (os.path.realpath(sys.base_prefix), scratch)}
    handles = {path: os.open(path, os.O_PATH) for path, hidden in exposed.items() if hidden}
    for hidden in {h for h in exposed.values() if h}:  # e.g. /root (0700): uid 65534 could not pass
        mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for path, handle in handles.items():  # the same paths again, inside the tmpfs
        os.makedirs(path, mode=0o755, exist_ok=True)
        mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
        os.close(handle)
    for point in _mounts():
        if point != scratch:
            mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def hidden_ancestor(path: str) -> str | None:
    """The outermost directory on the way to `path` that others may not traverse (None: all may)."""
    parts = path.strip("/").split("/")
    ancestors = ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
    return next((a for a in ancestors if not os.stat(a).st_mode & 0o001), None)


def can_drop_privileges(namespaces: bool, scratch: str) -> bool:
    """Root can become uid 65534 when the interpreter and scratch stay reachable (always, with namespaces)."""
    reachable = all(hidden_ancestor(p) is None for p in (os.path.realpath(sys.base_prefix), scratch))
    return os.getuid() == 0 and (namespaces or reachable)


def drop_privileges(scratch: str) -> None:
    os.chown(scratch, NOBODY, NOBODY)
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def set_limits(header: dict) -> None:
    cpu = int(header["cpu_seconds"])
    limits = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL one second later
        resource.RLIMIT_AS: (header["memory_bytes"],) * 2,
        resource.RLIMIT_FSIZE: (header["file_bytes"],) * 2,
        resource.RLIMIT_NOFILE: (64, 64),
        resource.RLIMIT_CORE: (0, 0),
    }
    if os.getuid() != 0:  # RLIMIT_NPROC never binds root
        limits[resource.RLIMIT_NPROC] = (header["max_processes"],) * 2
    for which, value in limits.items():
        resource.setrlimit(which, value)


def arm_audit_hook(scratch: str) -> None:
    """Refuse the events above; writes must resolve inside `scratch`."""
    root = os.path.realpath(scratch) + os.sep
    realpath, fspath, startswith = os.path.realpath, os.fspath, str.startswith
    own_proc = (f"/proc/{os.getpid()}/", "/proc/self/", "/proc/thread-self/")

    def inside(path) -> bool:
        if isinstance(path, int):  # an already-open descriptor
            return True
        full = realpath(fspath(path) if not isinstance(path, bytes) else path.decode(errors="replace"))
        return startswith(full + os.sep, root)

    def hook(event: str, args: tuple) -> None:
        if event in BLOCKED_EVENTS:
            raise PermissionError(f"sandbox: {BLOCKED_EVENTS[event]} is not allowed")
        if event == "import" and args[0].split(".")[0] in BLOCKED_MODULES:
            what = BLOCKED_MODULES[args[0].split(".")[0]]
            raise PermissionError(f"sandbox: importing {args[0]!r} ({what}) is not allowed")
        if event == "open":
            path, flags = args[0], args[2]
            if not isinstance(path, int):
                text = realpath(fspath(path)) if not isinstance(path, bytes) else path.decode(errors="replace")
                if startswith(str(text), "/proc/") and not startswith(str(text), own_proc):
                    raise PermissionError(f"sandbox: reading other processes' {text!r} is not allowed")
            if flags & WRITE_FLAGS and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} outside the scratch directory is not allowed")
        if event in PATH_EVENTS and not inside(args[PATH_EVENTS[event]]):
            raise PermissionError(f"sandbox: changing {args[PATH_EVENTS[event]]!r} outside scratch is not allowed")

    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED_MODULES:
            del sys.modules[name]
    sys.addaudithook(hook)


def run(code: str) -> int:
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        tree = ast.parse(code, "<sandbox>")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<sandbox>", "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<sandbox>", "eval"), namespace)
            if value is not None:
                print(repr(value))
    except BaseException as err:
        if isinstance(err, SystemExit) and err.code in (None, 0):
            return 0
        traceback.print_exception(err.with_traceback(err.__traceback__.tb_next if err.__traceback__ else None))
        return 1
    return 0


def main() -> int:
    header = json.loads(sys.stdin.readline())
    code = sys.stdin.read()
    scratch = header["scratch"]
    if header["namespaces"]:
        isolate_filesystem(scratch)
    if can_drop_privileges(header["namespaces"], scratch):
        drop_privileges(scratch)
    set_limits(header)
    os.chdir(scratch)
    if header["audit_hook"]:
        arm_audit_hook(scratch)
    return run(code)


if __name__ == "__main__":
    sys.exit(main())
