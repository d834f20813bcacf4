"""The libraries this instrumentation instruments (checked by ``BaseInstrumentor``)."""

_instruments = ("django >= 4.2",)
