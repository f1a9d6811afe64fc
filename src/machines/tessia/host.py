"""
The tessia host: runs a tessia-mesh machine class in a tessia task unit, or checks a request's
parameters with the class's validate() before the task is created.

    python -I -B host.py run   --class MODULE:CLASS [--path DIR]...
    python -I -B host.py check --class MODULE:CLASS [--path DIR]...

The runner builds this command line from its root-owned config, never from a request. A machine
class has a static run(task) and may have a static validate(task); `task` has `.machine` and
`.parameters`, as tessia-mesh's Task has them. The parameters are the JSON of the task's stdin (a
regular file), the machine's name is $TESSIA_MACHINE, the task's id $TESSIA_TASK_ID (run only).

run:   print lines, sys.stderr lines and logging records become journal entries, through
       python3-systemd's native protocol when it is importable and journald's socket is there,
       else as `<N>`-prefixed lines on stdout. A normal return exits 0, SystemExit(n) exits n,
       an uncaught exception is logged and ends the host by SIGABRT, the first SIGTERM raises
       StopRequested in the machine (its finally blocks run) and the host exits 143.
check: validate(task) returning exits 0, raising an Exception exits 1 with a one-line reason as
       the only thing written to stderr; 125 when the check could not run.

The whole contract: docs/machines.md. Python >= 3.9, standard library only.
"""

import atexit
import importlib
import io
import json
import logging
import os
import re
import resource
import signal
import stat
import sys
import threading
import traceback

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_SYSTEM_EXIT_UNUSABLE = 1
EXIT_CANNOT_CHECK = 125
EXIT_STOPPED = 128 + signal.SIGTERM

LOG_CRIT, LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG = 2, 3, 4, 6, 7
STDERR_PRIORITY = LOG_ERR
PRINT_PRIORITY = LOG_INFO

JOURNAL_SOCKET = "/run/systemd/journal/socket"
REASON_MAX_CHARS = 500
# journald cuts stream lines at LineMax= (48 KiB by default) and the cut-off rest loses its
# `<N>` prefix: longer lines are written as pieces, each with its prefix.
LINE_PIECE_BYTES = 32 * 1024
# A partial line (no newline yet) is kept up to this size, as journald keeps a stream's.
PARTIAL_LINE_MAX_CHARS = 32 * 1024
TASK_ID = re.compile(r"[0-9a-f]{8}")
CLASS_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
MAIN_THREAD = threading.get_ident()
HOST_FILE = os.path.abspath(__file__)


class UsageError(Exception):
    """The command line or environment is not what the runner builds."""


class LoadError(Exception):
    """The machine class cannot be imported or is not a machine class."""


class ParametersError(Exception):
    """The parameters on stdin cannot be read or decoded."""


class StopRequested(BaseException):
    """
    Raised in the machine's main thread by the first SIGTERM (a stop, or the task's runtime limit).
    A BaseException, as KeyboardInterrupt is, so `except Exception:` in machine code lets it pass
    and only finally blocks, `with` exits and `except BaseException:` see it.
    """


class Task:
    """What run() and validate() get: tessia-mesh's Task has exactly these attributes."""

    def __init__(self, machine, parameters):
        self.machine = machine
        self.parameters = parameters


def priority_of_level(levelno):
    """A logging level's journal priority; a custom level takes the next lower standard one's."""
    if levelno >= logging.CRITICAL:
        return LOG_CRIT
    if levelno >= logging.ERROR:
        return LOG_ERR
    if levelno >= logging.WARNING:
        return LOG_WARNING
    if levelno >= logging.INFO:
        return LOG_INFO
    return LOG_DEBUG


def describe(exc):
    """`Type: first line of str(exc)`, or just `Type` when there is no text."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the exception's type
        text = ""
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return "%s: %s" % (name, first) if first else name


def one_line(text, limit=REASON_MAX_CHARS):
    text = "".join(" " if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def format_traceback(exc):
    """The traceback as Python prints it, less the host's and importlib's frames (noise to a reader)."""
    summary = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    pending = [summary]
    while pending:
        current = pending.pop()
        current.stack = traceback.StackSummary.from_list([frame for frame in current.stack if not hidden_frame(frame.filename)])
        pending.extend(chained for chained in (current.__cause__, current.__context__) if chained is not None)
    return "".join(summary.format()).rstrip("\n")


def hidden_frame(filename):
    return filename == HOST_FILE or filename.startswith("<frozen importlib") or filename == importlib.__file__


class StopGuard:
    """
    The first SIGTERM raises StopRequested in the main thread, wherever it is; it must not land
    inside the host's own writing (a line half written, a partial-line buffer half updated). While
    the main thread is inside one (`with STOP_GUARD:`), the stop waits for the end of it.
    """

    def __init__(self):
        self.armed = False
        self.requested = False
        self.delivered = False
        self.output = None
        self._depth = 0
        self._pending = False

    def __enter__(self):
        if threading.get_ident() == MAIN_THREAD:
            self._depth += 1

    def __exit__(self, *_exc):
        if threading.get_ident() != MAIN_THREAD:
            return False
        self._depth -= 1
        if self._depth == 0 and self._pending:
            self._pending = False
            self._deliver()
        return False

    def on_sigterm(self, _signum, _frame):
        # Further SIGTERMs (KillMode=control-group sends one to every process, a second stop)
        # must not interrupt the machine's cleanup.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.requested = True
        if not self.armed:
            return
        if self._depth > 0:
            self._pending = True
            return
        self._deliver()

    def _deliver(self):
        self.delivered = True
        self.output.emit(LOG_INFO, "Stop requested: the machine may clean up")
        raise StopRequested()


STOP_GUARD = StopGuard()


def write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def utf8_pieces(data, size):
    """`data` in pieces of at most `size` bytes, cut between characters."""
    if len(data) <= size:
        return [data]
    pieces = []
    while len(data) > size:
        cut = size
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        pieces.append(data[:cut])
        data = data[cut:]
    pieces.append(data)
    return pieces


def prefixed_lines(priority, message):
    prefix = b"<%d>" % priority
    # journald's stream ends a line at NUL too: a NUL must not start an unprefixed line ("\0<0>forged").
    lines = message.replace("\x00", "\n").split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    out = []
    for line in lines:
        for piece in utf8_pieces(line.encode("utf-8", "backslashreplace"), LINE_PIECE_BYTES):
            out.append(prefix + piece + b"\n")
    return b"".join(out)


class StdoutOutput:
    """Entries as lines on a journald stream, each with its `<N>` priority prefix (SyslogLevelPrefix=)."""

    transport = "stdout"

    def __init__(self, fd):
        self._fd = fd
        self._lock = threading.Lock()

    def emit(self, priority, message, fields=None):
        data = prefixed_lines(priority, message)
        with STOP_GUARD, self._lock:
            try:
                write_all(self._fd, data)
            except OSError:
                pass  # the stream is gone (journald restarted without it): nowhere left to say so


class JournalOutput:
    """
    Entries over journald's native protocol (python3-systemd's sendv: exactly the fields given).
    Every entry names its task and machine itself: journald cannot attribute a datagram to the
    unit once its sender has exited, and then leaves out the unit's LogExtraFields.
    """

    transport = "journal"

    def __init__(self, sendv, identity, fallback):
        self._sendv = sendv
        self._identity = [("%s=%s" % item).encode("utf-8", "backslashreplace") for item in identity]
        self._fallback = fallback

    def emit(self, priority, message, fields=None):
        args = [b"MESSAGE=" + message.encode("utf-8", "backslashreplace"), b"PRIORITY=%d" % priority]
        for name, value in fields or ():
            args.append(name.encode("ascii") + b"=" + str(value).encode("utf-8", "backslashreplace"))
        args.extend(self._identity)
        with STOP_GUARD:
            try:
                self._sendv(*args)
            except Exception:  # journald refused it (its socket is there, nobody listens): the stream keeps it
                self._fallback.emit(priority, message)


def record_fields(record):
    return (
        ("LOGGER", record.name),
        ("CODE_MODULE", record.module),
        ("CODE_FUNC", record.funcName),
        ("CODE_LINE", record.lineno),
        ("CODE_FILE", record.pathname),
        ("TESSIA_LOG_LEVEL", record.levelname),
    )


def task_log_handler(base, output):
    """
    A handler for the root logger that sends each record as one entry with fields of its own.
    Not python3-systemd's JournalHandler.emit: that one copies record.__dict__ into the entry
    (msg, args, created… as lowercase fields) and rounds custom levels up.
    """

    class TaskLogHandler(base):
        def emit(self, record):
            try:
                output.emit(priority_of_level(record.levelno), self.format(record), record_fields(record))
            except Exception:
                self.handleError(record)

    return TaskLogHandler(logging.DEBUG)


class LineWriter(io.TextIOBase):
    """A machine's sys.stdout or sys.stderr: each complete line becomes one entry at `priority`."""

    encoding = "utf-8"
    errors = "backslashreplace"

    def __init__(self, output, priority, fd):
        super().__init__()
        self._output = output
        self._priority = priority
        self._fd = fd
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        with STOP_GUARD, self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            for line in lines:
                self._output.emit(self._priority, line)
            if len(self._partial) > PARTIAL_LINE_MAX_CHARS:
                self._output.emit(self._priority, self._partial)
                self._partial = ""
        return len(text)

    def flush(self):
        """Like a journald stream, a line becomes an entry once it is complete."""

    def finish(self):
        with self._lock:
            if self._partial:
                self._output.emit(self._priority, self._partial)
                self._partial = ""


def parse_arguments(argv):
    if len(argv) < 1 or argv[0] not in ("run", "check"):
        raise UsageError("usage: host.py run|check --class MODULE:CLASS [--path DIR]...")
    mode, rest, spec, paths = argv[0], argv[1:], None, []
    while rest:
        if len(rest) < 2 or rest[0] not in ("--class", "--path"):
            raise UsageError("unexpected argument %r" % rest[0])
        option, value, rest = rest[0], rest[1], rest[2:]
        if option == "--path":
            if not os.path.isabs(value):
                raise UsageError("--path %r is not an absolute path" % value)
            paths.append(value)
        elif spec is not None:
            raise UsageError("--class given twice")
        elif not CLASS_SPEC.fullmatch(value):
            raise UsageError("--class %r is not MODULE:CLASS" % value)
        else:
            spec = value
    if spec is None:
        raise UsageError("--class MODULE:CLASS is missing")
    return mode, spec, paths


def environment(name, pattern=None):
    value = os.environ.get(name, "")
    if not value or (pattern is not None and not pattern.fullmatch(value)):
        raise UsageError("$%s is %s" % (name, "not set" if not value else "not valid"))
    return value


def read_parameters(fd=0):
    """The JSON of stdin, read at offset 0 (pread): whoever read stdin before, it is all here."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ParametersError("stdin is not a regular file: the parameters are the task's stdin file")
        chunks, offset = [], 0
        while True:
            chunk = os.pread(fd, 1 << 20, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return json.loads(b"".join(chunks).decode("utf-8"))
    except ParametersError:
        raise
    except Exception as exc:
        raise ParametersError("cannot read the parameters: %s" % describe(exc)) from exc


def load_machine_class(spec, paths):
    sys.path[0:0] = paths
    module_name, attribute = spec.split(":")
    try:
        found = importlib.import_module(module_name)
        for name in attribute.split("."):
            found = getattr(found, name)
    except StopRequested:
        raise
    except BaseException as exc:
        raise LoadError("cannot load machine class %s: %s" % (spec, describe(exc))) from exc
    if not callable(getattr(found, "run", None)):
        raise LoadError("cannot load machine class %s: it has no callable run()" % spec)
    return found


def install_output(output, stdout_fd, stderr_fd):
    """print, sys.stderr, logging and threads' uncaught exceptions all go through `output`."""
    writers = (LineWriter(output, PRINT_PRIORITY, stdout_fd), LineWriter(output, STDERR_PRIORITY, stderr_fd))
    sys.stdout, sys.stderr = writers
    base = logging.Handler
    if output.transport == "journal":
        from systemd import journal

        base = journal.JournalHandler
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(task_log_handler(base, output))
    # All records, as the original runner's logging.basicConfig(level=DEBUG) did.
    root.setLevel(logging.DEBUG)

    def thread_exception(args):
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        output.emit(LOG_ERR, "Exception in thread %s:\n%s" % (name, format_traceback(args.exc_value)))

    threading.excepthook = thread_exception
    return writers


def open_run_output(identity):
    fallback = StdoutOutput(1)
    try:
        from systemd import journal
    except Exception:
        return fallback
    # PyPI's unrelated package "systemd" has a systemd.journal without these.
    sendv = getattr(journal, "sendv", None)
    if sendv is None or not hasattr(journal, "JournalHandler"):
        return fallback
    # libsystemd drops entries silently when the socket is missing (outside a unit, journald
    # not running): the stream is the safer place then.
    if not os.path.exists(JOURNAL_SOCKET):
        return fallback
    return JournalOutput(sendv, identity, fallback)


def finish(status, writers=(), abort=False):
    """
    Ends the host: the machine's atexit callbacks and logging.shutdown() run and every partial
    line is written, then os._exit, so that a non-daemon thread the machine left running does not
    keep the unit alive. `abort`: end by SIGABRT, which systemd reports as Result=signal.
    """
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for writer in writers:
        writer.finish()
    if abort:
        # The unit has LimitCORE=0 too; this death is a report, not a crash to debug.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.abort()
    os._exit(status)


def system_exit_status(exc, output):
    """SystemExit(n): n for an int in 0..255; Python's own `sys.exit("text")` convention otherwise."""
    code = exc.code
    if code is None:
        return EXIT_OK
    if isinstance(code, int) and 0 <= code <= 255:
        return code
    if isinstance(code, int):
        output.emit(LOG_ERR, "run() ended with SystemExit(%d): an exit status is 0..255" % code)
    else:
        output.emit(LOG_ERR, str(code))
    return EXIT_SYSTEM_EXIT_UNUSABLE


def run(argv):
    machine = os.environ.get("TESSIA_MACHINE", "")
    task_id = os.environ.get("TESSIA_TASK_ID", "")
    identity = (("SYSLOG_IDENTIFIER", "tessia-%s" % (machine or "host")), ("TESSIA_TASK_ID", task_id), ("TESSIA_MACHINE", machine))
    output = open_run_output(identity)
    writers = install_output(output, 1, 2)
    STOP_GUARD.output = output
    status, failure, spec = EXIT_OK, None, "?"
    try:
        try:
            # Armed before the handler exists, both inside the try: a SIGTERM at any point from
            # here on is raised where StopRequested is caught, never lost between two lines.
            STOP_GUARD.armed = True
            signal.signal(signal.SIGTERM, STOP_GUARD.on_sigterm)
            _mode, spec, paths = parse_arguments(argv)
            environment("TESSIA_MACHINE")
            environment("TESSIA_TASK_ID", TASK_ID)
            task = Task(machine, read_parameters())
            machine_class = load_machine_class(spec, paths)
            # The return value is ignored, as the original runner ignored it.
            machine_class.run(task)
        finally:
            STOP_GUARD.armed = False
    except StopRequested:
        pass
    except SystemExit as exc:
        status = system_exit_status(exc, output)
    except (UsageError, ParametersError) as exc:
        failure = str(exc)
    except LoadError as exc:
        cause = exc.__cause__
        failure = str(exc) if cause is None else "%s\n%s" % (exc, format_traceback(cause))
    except BaseException as exc:
        failure = "run() of %s raised %s\n%s" % (spec, describe(exc), format_traceback(exc))
    if STOP_GUARD.delivered:
        if failure is not None:
            output.emit(LOG_ERR, failure)
        finish(EXIT_STOPPED, writers)
    if failure is not None:
        output.emit(LOG_ERR, failure)
        finish(0, writers, abort=True)
    finish(status, writers)


def check(argv):
    # The starter reads fd 2 for the reason alone: everything else, the machine's output and any
    # process's stray writes to fd 2 included, goes to fd 1, the check unit's journal.
    reason_fd = os.dup(2)
    os.dup2(1, 2)
    output = StdoutOutput(1)
    writers = install_output(output, 1, 2)
    try:
        _mode, spec, paths = parse_arguments(argv)
        task = Task(environment("TESSIA_MACHINE"), read_parameters())
        machine_class = load_machine_class(spec, paths)
    except (UsageError, ParametersError) as exc:
        end_check(EXIT_CANNOT_CHECK, str(exc), reason_fd, writers)
    except LoadError as exc:
        if exc.__cause__ is not None:
            output.emit(LOG_ERR, "%s\n%s" % (exc, format_traceback(exc.__cause__)))
        end_check(EXIT_CANNOT_CHECK, str(exc), reason_fd, writers)
    validate = getattr(machine_class, "validate", None)
    if not callable(validate):
        end_check(EXIT_OK, None, reason_fd, writers)
    try:
        validate(task)
    except Exception as exc:
        # No traceback into the journal: the exception may quote the parameters, and they stay out
        # of every log (the runner scrubs the reason it reads).
        end_check(EXIT_INVALID, describe(exc), reason_fd, writers)
    except BaseException as exc:
        end_check(EXIT_CANNOT_CHECK, "validate() ended with %s" % type(exc).__name__, reason_fd, writers)
    end_check(EXIT_OK, None, reason_fd, writers)


def end_check(status, reason, reason_fd, writers):
    if reason is not None:
        try:
            write_all(reason_fd, (one_line(reason) + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass
    finish(status, writers)


def main(argv):
    if argv[:1] == ["check"]:
        check(argv)
    elif argv[:1] == ["run"]:
        run(argv)
    else:
        sys.stderr.write("usage: host.py run|check --class MODULE:CLASS [--path DIR]...\n")
        os._exit(EXIT_CANNOT_CHECK)


if __name__ == "__main__":
    main(sys.argv[1:])
