"""Example Ferryman apps, one module each; run one with ``ferryman dev -m examples.bookings``.

Each module's docstring says which event to send and which side effects to expect; the
external services they call are the recording stand-ins of :mod:`examples.services`.
"""
