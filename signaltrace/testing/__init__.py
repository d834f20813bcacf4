"""Assert on signals in tests: context managers for any test runner, and a unittest mixin.

Usage::

    from signaltrace.testing import assert_signal_sent, SignalAssertionsMixin

    with assert_signal_sent("post_save", sender=User, times=1, created=True):
        User.objects.create(username="ada")

    class SignupTests(SignalAssertionsMixin, TestCase):
        def test_profile(self):
            with self.assertReceiverCalled(create_profile, times=1), self.assertNoSignalLoops():
                User.objects.create(username="ada")

Each context manager records its block with :func:`signaltrace.record` (yielding
the :class:`~signaltrace.Trace`) and checks it when the block ends without an
exception. Signals are ``Signal`` objects or names (``"post_save"``,
``"shop.signals.order_paid"``), senders classes or names (``"auth.User"``),
receivers functions or dotted names; a name without dots matches the last part of a
dotted one. Expected kwargs are a subset of those sent, compared as the trace shows
them: model instances by label and primary key, ``unittest.mock.ANY`` for any value.
Pass a kwarg whose name collides with a parameter (``times``, ``sender``) through
``kwargs={...}``. The pytest plugin's ``django_assert_signals`` fixture is a
:class:`SignalAssertions` that shows details under ``pytest -v``.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from signaltrace.assertions import (
    Expecting,
    MaxDepth,
    NoLoops,
    NoReceiverErrors,
    ReceiverCalled,
    SignalAssertionError,
    SignalSent,
    dispatch_filter,
    limits,
    receiver_matcher,
)

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.records import Trace

__all__ = [
    "DjangoAssertSignals",
    "SignalAssertionError",
    "SignalAssertions",
    "SignalAssertionsMixin",
    "assert_max_signal_depth",
    "assert_no_receiver_errors",
    "assert_no_signal_loops",
    "assert_receiver_called",
    "assert_receiver_not_called",
    "assert_signal_not_sent",
    "assert_signal_sent",
    "assert_signals",
]


class DjangoAssertSignals(Protocol):
    """The type of the ``django_assert_signals`` pytest fixture, for annotations.

    Every method returns a context manager that records its block and yields the Trace.
    """

    def __call__(
        self,
        *,
        max_depth: int | None = None,
        max_dispatches: int | None = None,
        allow_loops: bool = False,
        allow_receiver_errors: bool = False,
    ) -> AbstractContextManager[Trace]:
        """No loop, no receiver error (even swallowed by ``send_robust``), and optional limits."""

    def sent(
        self,
        signal: Signal | str,
        *,
        sender: Any = None,
        times: int | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        """``signal`` sent ``times`` times (default: at least once) with these kwargs among its own."""

    def not_sent(
        self,
        signal: Signal | str,
        *,
        sender: Any = None,
        kwargs: Mapping[str, Any] | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        """``signal`` (with this sender and kwargs) never sent."""

    def receiver_called(
        self,
        receiver: Any,
        *,
        signal: Signal | str | None = None,
        sender: Any = None,
        times: int | None = None,
    ) -> AbstractContextManager[Trace]:
        """``receiver`` called ``times`` times (default: at least once), optionally by one signal/sender."""

    def receiver_not_called(
        self, receiver: Any, *, signal: Signal | str | None = None, sender: Any = None
    ) -> AbstractContextManager[Trace]:
        """``receiver`` never called (optionally: not by this signal/sender)."""

    def max_depth(self, depth: int) -> AbstractContextManager[Trace]:
        """No signal sent more than ``depth`` receivers deep (0: none from inside a receiver)."""

    def no_loops(self) -> AbstractContextManager[Trace]:
        """No loop stopped by the loop guard."""

    def no_receiver_errors(self) -> AbstractContextManager[Trace]:
        """No receiver raised, including errors ``send_robust`` swallowed."""


class SignalAssertions:
    """The context managers, with one output style (``verbose``: kwargs, locations, timings)."""

    def __init__(self, *, verbose: bool = False, more_hint: str | None = None) -> None:
        self.verbose = verbose
        self.more_hint = more_hint

    def _expect(self, *expectations: Any) -> AbstractContextManager[Trace]:
        return Expecting(*expectations, verbose=self.verbose, more_hint=self.more_hint)

    def __call__(
        self,
        *,
        max_depth: int | None = None,
        max_dispatches: int | None = None,
        allow_loops: bool = False,
        allow_receiver_errors: bool = False,
    ) -> AbstractContextManager[Trace]:
        return self._expect(
            *limits(
                max_depth=max_depth,
                max_dispatches=max_dispatches,
                allow_loops=allow_loops,
                allow_receiver_errors=allow_receiver_errors,
            )
        )

    def sent(
        self,
        signal: Signal | str,
        *,
        sender: Any = None,
        times: int | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        matcher = dispatch_filter(signal, sender, {**(kwargs or {}), **signal_kwargs})
        return self._expect(SignalSent(matcher, times))

    def not_sent(
        self,
        signal: Signal | str,
        *,
        sender: Any = None,
        kwargs: Mapping[str, Any] | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        matcher = dispatch_filter(signal, sender, {**(kwargs or {}), **signal_kwargs})
        return self._expect(SignalSent(matcher, negate=True))

    def receiver_called(
        self,
        receiver: Any,
        *,
        signal: Signal | str | None = None,
        sender: Any = None,
        times: int | None = None,
    ) -> AbstractContextManager[Trace]:
        return self._expect(ReceiverCalled(receiver_matcher(receiver), _scope(signal, sender), times))

    def receiver_not_called(
        self, receiver: Any, *, signal: Signal | str | None = None, sender: Any = None
    ) -> AbstractContextManager[Trace]:
        return self._expect(ReceiverCalled(receiver_matcher(receiver), _scope(signal, sender), negate=True))

    def max_depth(self, depth: int) -> AbstractContextManager[Trace]:
        return self._expect(MaxDepth(depth))

    def no_loops(self) -> AbstractContextManager[Trace]:
        return self._expect(NoLoops())

    def no_receiver_errors(self) -> AbstractContextManager[Trace]:
        return self._expect(NoReceiverErrors())


def _scope(signal: Signal | str | None, sender: Any) -> Any:
    if signal is None:
        if sender is not None:
            raise TypeError("sender= needs signal= as well")
        return None
    return dispatch_filter(signal, sender)


_plain = SignalAssertions(more_hint="pass verbose=True for kwargs, locations and timings")
_detailed = SignalAssertions(verbose=True)
_mixin_plain = SignalAssertions(more_hint="set signaltrace_verbose = True for kwargs, locations and timings")


def _style(verbose: bool) -> SignalAssertions:
    return _detailed if verbose else _plain


def assert_signals(
    *,
    max_depth: int | None = None,
    max_dispatches: int | None = None,
    allow_loops: bool = False,
    allow_receiver_errors: bool = False,
    verbose: bool = False,
) -> AbstractContextManager[Trace]:
    """No loop, no receiver error, and optional depth / dispatch-count limits for the block."""
    return _style(verbose)(
        max_depth=max_depth,
        max_dispatches=max_dispatches,
        allow_loops=allow_loops,
        allow_receiver_errors=allow_receiver_errors,
    )


def assert_signal_sent(
    signal: Signal | str,
    *,
    sender: Any = None,
    times: int | None = None,
    kwargs: Mapping[str, Any] | None = None,
    verbose: bool = False,
    **signal_kwargs: Any,
) -> AbstractContextManager[Trace]:
    """``signal`` sent in the block ``times`` times (default: at least once)."""
    return _style(verbose).sent(signal, sender=sender, times=times, kwargs=kwargs, **signal_kwargs)


def assert_signal_not_sent(
    signal: Signal | str,
    *,
    sender: Any = None,
    kwargs: Mapping[str, Any] | None = None,
    verbose: bool = False,
    **signal_kwargs: Any,
) -> AbstractContextManager[Trace]:
    """``signal`` (with this sender and kwargs) not sent in the block."""
    return _style(verbose).not_sent(signal, sender=sender, kwargs=kwargs, **signal_kwargs)


def assert_receiver_called(
    receiver: Any,
    *,
    signal: Signal | str | None = None,
    sender: Any = None,
    times: int | None = None,
    verbose: bool = False,
) -> AbstractContextManager[Trace]:
    """``receiver`` called in the block ``times`` times (default: at least once)."""
    return _style(verbose).receiver_called(receiver, signal=signal, sender=sender, times=times)


def assert_receiver_not_called(
    receiver: Any, *, signal: Signal | str | None = None, sender: Any = None, verbose: bool = False
) -> AbstractContextManager[Trace]:
    """``receiver`` not called in the block."""
    return _style(verbose).receiver_not_called(receiver, signal=signal, sender=sender)


def assert_max_signal_depth(depth: int, *, verbose: bool = False) -> AbstractContextManager[Trace]:
    """No dispatch in the block nested deeper than ``depth``."""
    return _style(verbose).max_depth(depth)


def assert_no_signal_loops(*, verbose: bool = False) -> AbstractContextManager[Trace]:
    """No loop stopped by the loop guard in the block (also those ``send_robust`` swallowed)."""
    return _style(verbose).no_loops()


def assert_no_receiver_errors(*, verbose: bool = False) -> AbstractContextManager[Trace]:
    """No receiver raised in the block, including errors ``send_robust`` swallowed."""
    return _style(verbose).no_receiver_errors()


class SignalAssertionsMixin:
    """Signal assertions for ``unittest.TestCase`` and Django's test cases.

    Each method returns a context manager (yielding the Trace). Set
    ``signaltrace_verbose = True`` on the class for kwargs, locations and timings
    in failure messages.
    """

    signaltrace_verbose: bool = False

    def _signal_assertions(self) -> SignalAssertions:
        if self.signaltrace_verbose:
            return _detailed
        return _mixin_plain

    def assertSignalSent(
        self,
        signal: Signal | str,
        *,
        sender: Any = None,
        times: int | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        assertions = self._signal_assertions()
        return assertions.sent(signal, sender=sender, times=times, kwargs=kwargs, **signal_kwargs)

    def assertSignalNotSent(
        self,
        signal: Signal | str,
        *,
        sender: Any = None,
        kwargs: Mapping[str, Any] | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        return self._signal_assertions().not_sent(signal, sender=sender, kwargs=kwargs, **signal_kwargs)

    def assertReceiverCalled(
        self,
        receiver: Any,
        *,
        signal: Signal | str | None = None,
        sender: Any = None,
        times: int | None = None,
    ) -> AbstractContextManager[Trace]:
        return self._signal_assertions().receiver_called(receiver, signal=signal, sender=sender, times=times)

    def assertReceiverNotCalled(
        self, receiver: Any, *, signal: Signal | str | None = None, sender: Any = None
    ) -> AbstractContextManager[Trace]:
        return self._signal_assertions().receiver_not_called(receiver, signal=signal, sender=sender)

    def assertMaxSignalDepth(self, depth: int) -> AbstractContextManager[Trace]:
        return self._signal_assertions().max_depth(depth)

    def assertNoSignalLoops(self) -> AbstractContextManager[Trace]:
        return self._signal_assertions().no_loops()

    def assertNoReceiverErrors(self) -> AbstractContextManager[Trace]:
        return self._signal_assertions().no_receiver_errors()

    def assertSignals(
        self,
        *,
        max_depth: int | None = None,
        max_dispatches: int | None = None,
        allow_loops: bool = False,
        allow_receiver_errors: bool = False,
    ) -> AbstractContextManager[Trace]:
        return self._signal_assertions()(
            max_depth=max_depth,
            max_dispatches=max_dispatches,
            allow_loops=allow_loops,
            allow_receiver_errors=allow_receiver_errors,
        )
