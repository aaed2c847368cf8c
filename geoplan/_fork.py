"""Work done by a forked process while this one goes on (Linux), for city-scale runs.

Most of a city's planning holds Python's GIL, so two threads cannot share it out; a
forked process starts with a copy of every layer already read (the pages are shared
until either process writes to them) and costs a few milliseconds to start. Used by
:func:`geoplan.plan.plan` (meter boxes sited while the routing graph is built), by
:mod:`geoplan.export` (the GeoPackage and workbook written while this process writes
the GeoJSON) and by :func:`geoplan.maps.write_maps` (half of a city's compound pages).

A fork is only made when it is safe: on Linux, while this process runs no other thread
(a fork copies no thread, but may copy a lock that one of them holds) and is not itself a
daemonic process (which may have no children). Otherwise, and whenever the child fails,
the work is done in this process, so that it gives the same result or raises the same
error.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

_R = TypeVar("_R")

_PR_SET_PDEATHSIG = 1  # prctl(2)


def can_fork() -> bool:
    """Whether this process may fork a worker now (see the module's notes)."""
    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and not multiprocessing.current_process().daemon
    )


def _die_with_parent(parent: int) -> None:
    """Have the kernel kill this (forked) process when its parent dies (Linux)."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died already
        os._exit(1)


def _run_in_child(parent: int, call: Callable[[], None]) -> None:
    """Run ``call`` in the forked process; exit 1 on any error (the parent then retries)."""
    try:
        _die_with_parent(parent)
        call()
    except BaseException:  # the parent does the work itself, and reports what fails
        os._exit(1)


def start_in_child(call: Callable[[], None]) -> multiprocessing.process.BaseProcess | None:
    """Start ``call`` in a forked process; None where forking is not safe or possible.

    The child exits with code 1 when ``call`` raises anything.
    """
    if not can_fork():
        return None
    context = multiprocessing.get_context("fork")
    child = context.Process(target=_run_in_child, args=(os.getpid(), call), daemon=True)
    try:
        child.start()
    except OSError:  # no more processes, or no memory for one: the caller works here
        return None
    return child


class _Kept(logging.Handler):
    """Keeps log records (made plain, so that they pickle) instead of writing them."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args = record.getMessage(), None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        self.records.append(record)


def _send_result(call: Callable[[], object], conn: multiprocessing.connection.Connection) -> None:
    """In the child: run ``call`` with its log records kept, and send both back."""
    kept = _Kept()
    root = logging.getLogger()
    root.handlers = [kept]  # the child's copy: the parent writes them, in its order
    value = call()
    conn.send_bytes(pickle.dumps((value, kept.records), protocol=pickle.HIGHEST_PROTOCOL))
    conn.close()


class Beside(Generic[_R]):
    """The value of ``call()``, computed by a forked process while this one goes on.

    Where no fork is made (``fork`` False, or not safe: :func:`can_fork`), ``call`` runs
    here at once, in the constructor. :meth:`result` gives the value either way; if the
    child failed for any reason, ``call`` runs here then (raising what it raises). The
    child's log records are handled here, when the result is taken. Use it as a context
    manager, so that a child is stopped if this process leaves early.

    Parameters
    ----------
    call
        The work; its value must pickle.
    fork
        Whether the work is large enough to be worth a process.
    """

    def __init__(self, call: Callable[[], _R], *, fork: bool) -> None:
        self._call = call
        self._child: multiprocessing.process.BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._done = False
        self._value: _R | None = None
        if fork:
            receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
            self._child = start_in_child(functools.partial(_send_result, call, send))
            send.close()  # the child's end: closed here so that its exit reads as EOF
            if self._child is not None:
                self._conn = receive
            else:
                receive.close()
        if self._child is None:
            self._value, self._done = call(), True

    @property
    def forked(self) -> bool:
        """Whether the work was given to a forked process."""
        return self._child is not None

    def result(self) -> _R:
        """Wait for the value (or compute it here, if the child failed) and return it."""
        if not self._done:
            self._value, self._done = self._receive(), True
        return self._value  # type: ignore[return-value]

    def _receive(self) -> _R:
        assert self._conn is not None
        assert self._child is not None
        try:
            data = self._conn.recv_bytes()
        except (EOFError, OSError):
            data = None
        finally:
            self._conn.close()
        self._child.join()
        if data is None or self._child.exitcode != 0:
            return self._call()
        value, records = pickle.loads(data)
        for record in records:
            logging.getLogger(record.name).handle(record)
        return value

    def cancel(self) -> None:
        """Stop the child if it is still working (its value is then never taken)."""
        if self._child is not None and not self._done:
            self._child.kill()
            self._child.join()
            if self._conn is not None:
                self._conn.close()
            self._done = True

    def __enter__(self) -> Beside[_R]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cancel()
