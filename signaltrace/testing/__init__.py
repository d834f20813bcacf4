"""The signal assertion API, defined once in :class:`SignalAssertions`, and its front ends.

Usage::

    from signaltrace.testing import assert_signal_sent, SignalAssertionsMixin

    with assert_signal_sent("post_save", sender=User, times=1, created=True):
        User.objects.create(username="ada")

    class SignupTests(SignalAssertionsMixin, TestCase):
        def test_profile(self):
            with self.assertReceiverCalled(create_profile, times=1), self.assertNoSignalLoops():
                User.objects.create(username="ada")

Every assertion is a method of :class:`SignalAssertions`, with its signature and
docstring; an instance only fixes the style of failure messages. The front ends
forward to those methods and add no parameter of their own:

* the module functions (``assert_signal_sent`` ...) are the bound methods of one
  instance whose failures hint at ``verbose=True``;
* :class:`SignalAssertionsMixin` gives a test case ``self.signaltrace_assertions``
  (styled by ``signaltrace_verbose``) and the camelCase methods ``assertSignalSent``
  ... that are its bound methods;
* the pytest fixture ``django_assert_signals`` is an instance, verbose under
  ``pytest -v`` (:mod:`signaltrace.testing.plugin`); :data:`DjangoAssertSignals`
  names its type for annotations.

Each context manager records its block with :func:`signaltrace.record` (yielding
the :class:`~signaltrace.Trace`) and checks it when the block ends without an
exception. Signals are ``Signal`` objects or names (``"post_save"``,
``"shop.signals.order_paid"``), senders classes or names (``"auth.User"``),
receivers functions or dotted names; a name without dots matches the last part of a
dotted one. Expected kwargs are a subset of those sent, compared as the trace shows
them: model instances by label and primary key, ``unittest.mock.ANY`` for any value.
Pass a kwarg whose name collides with a parameter (``times``, ``sender``,
``verbose``) through ``kwargs={...}``. ``no_hazards`` (``assert_no_signal_hazards``,
``assertNoSignalHazards``) fails on the hazards the core finds (``Trace.hazards``),
listing each one's kind, place and message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar, overload

from signaltrace.testing.assertions import (
    Expectation,
    Expecting,
    MaxDepth,
    NoHazards,
    NoLoops,
    NoReceiverErrors,
    ReceiverCalled,
    SignalAssertionError,
    SignalSent,
    dispatch_filter,
    hazard_kinds,
    limits,
    receiver_matcher,
    receiver_scope,
)

if TYPE_CHECKING:
    from django.dispatch import Signal

    from signaltrace.core import Trace

__all__ = [
    "DjangoAssertSignals",
    "SignalAssertionError",
    "SignalAssertions",
    "SignalAssertionsMixin",
    "assert_max_signal_depth",
    "assert_no_receiver_errors",
    "assert_no_signal_hazards",
    "assert_no_signal_loops",
    "assert_receiver_called",
    "assert_receiver_not_called",
    "assert_signal_not_sent",
    "assert_signal_sent",
    "assert_signals",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The last line of a short failure message of the module functions.
FUNCTIONS_HINT = "pass verbose=True for kwargs, locations and timings"
#: The last line of a short failure message of :class:`SignalAssertionsMixin`.
MIXIN_HINT = "set signaltrace_verbose = True for kwargs, locations and timings"


class SignalAssertions:
    """Every signal assertion; each method returns a context manager yielding the block's Trace.

    The instance sets the style of failure messages: with ``verbose``, each dispatch's
    kwargs and each receiver's location, duration and exception are listed; without it,
    ``more_hint`` (if any) ends the message, telling how to get them. Every method takes
    ``verbose=True`` or ``False`` to override the instance's style for one block.
    """

    def __init__(self, *, verbose: bool = False, more_hint: str | None = None) -> None:
        self.verbose = verbose
        self.more_hint = more_hint

    def __repr__(self) -> str:
        return f"{type(self).__name__}(verbose={self.verbose!r}, more_hint={self.more_hint!r})"

    def _expect(self, verbose: bool | None, *expectations: Expectation) -> AbstractContextManager[Trace]:
        verbose = self.verbose if verbose is None else verbose
        return Expecting(*expectations, verbose=verbose, more_hint=self.more_hint)

    def __call__(
        self,
        *,
        max_depth: int | None = None,
        max_dispatches: int | None = None,
        allow_loops: bool = False,
        allow_receiver_errors: bool = False,
        verbose: bool | None = None,
    ) -> AbstractContextManager[Trace]:
        """No loop, no receiver error (even swallowed by ``send_robust``), and optional limits:
        no dispatch deeper than ``max_depth``, at most ``max_dispatches`` dispatches."""
        expectations = limits(
            max_depth=max_depth,
            max_dispatches=max_dispatches,
            allow_loops=allow_loops,
            allow_receiver_errors=allow_receiver_errors,
        )
        return self._expect(verbose, *expectations)

    # ``self`` is positional-only where signal kwargs are taken: ``self=...`` is one of them.
    def sent(
        self,
        /,
        signal: Signal | str,
        *,
        sender: Any = None,
        times: int | None = None,
        kwargs: Mapping[str, Any] | None = None,
        verbose: bool | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        """``signal`` sent ``times`` times (default: at least once) with these kwargs among its own."""
        matcher = dispatch_filter(signal, sender, {**(kwargs or {}), **signal_kwargs})
        return self._expect(verbose, SignalSent(matcher, times))

    def not_sent(
        self,
        /,
        signal: Signal | str,
        *,
        sender: Any = None,
        kwargs: Mapping[str, Any] | None = None,
        verbose: bool | None = None,
        **signal_kwargs: Any,
    ) -> AbstractContextManager[Trace]:
        """``signal`` (with this sender and kwargs) never sent."""
        matcher = dispatch_filter(signal, sender, {**(kwargs or {}), **signal_kwargs})
        return self._expect(verbose, SignalSent(matcher, negate=True))

    def receiver_called(
        self,
        receiver: Any,
        *,
        signal: Signal | str | None = None,
        sender: Any = None,
        times: int | None = None,
        verbose: bool | None = None,
    ) -> AbstractContextManager[Trace]:
        """``receiver`` called ``times`` times (default: at least once), optionally by one signal/sender."""
        expectation = ReceiverCalled(receiver_matcher(receiver), receiver_scope(signal, sender), times)
        return self._expect(verbose, expectation)

    def receiver_not_called(
        self,
        receiver: Any,
        *,
        signal: Signal | str | None = None,
        sender: Any = None,
        verbose: bool | None = None,
    ) -> AbstractContextManager[Trace]:
        """``receiver`` never called (optionally: not by this signal/sender)."""
        expectation = ReceiverCalled(receiver_matcher(receiver), receiver_scope(signal, sender), negate=True)
        return self._expect(verbose, expectation)

    def max_depth(self, depth: int, *, verbose: bool | None = None) -> AbstractContextManager[Trace]:
        """No signal sent more than ``depth`` receivers deep (0: none from inside a receiver)."""
        return self._expect(verbose, MaxDepth(depth))

    def no_loops(self, *, verbose: bool | None = None) -> AbstractContextManager[Trace]:
        """No loop stopped by the loop guard (also those ``send_robust`` swallowed)."""
        return self._expect(verbose, NoLoops())

    def no_receiver_errors(self, *, verbose: bool | None = None) -> AbstractContextManager[Trace]:
        """No receiver raised, including errors ``send_robust`` swallowed."""
        return self._expect(verbose, NoReceiverErrors())

    def no_hazards(
        self, kinds: str | Iterable[str] | None = None, *, verbose: bool | None = None
    ) -> AbstractContextManager[Trace]:
        """No hazard in ``Trace.hazards`` (only of these ``kinds``, if given): a Celery task
        published or an e-mail sent by a receiver inside a transaction (``task_before_commit``,
        ``mail_before_commit``), a bulk write that skipped save receivers (``bypassed_write``)."""
        return self._expect(verbose, NoHazards(hazard_kinds(kinds)))


#: The type of the pytest fixture ``django_assert_signals``, for annotations.
DjangoAssertSignals: TypeAlias = SignalAssertions

# The module functions: bound methods of one instance, so they share signatures and docstrings.
_functions = SignalAssertions(more_hint=FUNCTIONS_HINT)
assert_signals = _functions.__call__
assert_signal_sent = _functions.sent
assert_signal_not_sent = _functions.not_sent
assert_receiver_called = _functions.receiver_called
assert_receiver_not_called = _functions.receiver_not_called
assert_max_signal_depth = _functions.max_depth
assert_no_signal_loops = _functions.no_loops
assert_no_receiver_errors = _functions.no_receiver_errors
assert_no_signal_hazards = _functions.no_hazards


class _Forward(Generic[_P, _R]):
    """A mixin method: the same-named method of the test case's ``signaltrace_assertions``.

    Typed from the :class:`SignalAssertions` method it names, so type checkers and IDEs
    see that method's parameters; ``help()`` shows its docstring.
    """

    def __init__(self, method: Callable[Concatenate[SignalAssertions, _P], _R]) -> None:
        self.name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _Forward[_P, _R]: ...

    @overload
    def __get__(self, instance: SignalAssertionsMixin, owner: type[Any]) -> Callable[_P, _R]: ...

    def __get__(
        self, instance: SignalAssertionsMixin | None, owner: type[Any]
    ) -> _Forward[_P, _R] | Callable[_P, _R]:
        if instance is None:
            return self
        method: Callable[_P, _R] = getattr(instance.signaltrace_assertions, self.name)
        return method


class SignalAssertionsMixin:
    """Signal assertions for ``unittest.TestCase`` and Django's test cases.

    ``self.assertSignalSent(...)`` and the other camelCase methods are those of
    :class:`SignalAssertions` (``sent`` ...), each returning a context manager that
    yields the Trace. Set ``signaltrace_verbose = True`` on the class for kwargs,
    locations and timings in failure messages.
    """

    signaltrace_verbose: bool = False

    @property
    def signaltrace_assertions(self) -> SignalAssertions:
        """The assertions behind the camelCase methods, styled by ``signaltrace_verbose``."""
        return SignalAssertions(verbose=self.signaltrace_verbose, more_hint=MIXIN_HINT)

    assertSignals = _Forward(SignalAssertions.__call__)
    assertSignalSent = _Forward(SignalAssertions.sent)
    assertSignalNotSent = _Forward(SignalAssertions.not_sent)
    assertReceiverCalled = _Forward(SignalAssertions.receiver_called)
    assertReceiverNotCalled = _Forward(SignalAssertions.receiver_not_called)
    assertMaxSignalDepth = _Forward(SignalAssertions.max_depth)
    assertNoSignalLoops = _Forward(SignalAssertions.no_loops)
    assertNoReceiverErrors = _Forward(SignalAssertions.no_receiver_errors)
    assertNoSignalHazards = _Forward(SignalAssertions.no_hazards)
