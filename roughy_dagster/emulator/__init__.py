"""A faithful local emulator of Roughy's `GET /v1/assets`, independent of the rest of the package."""

from .faults import FAULT_KINDS, TRANSIENT_FAULT_KINDS, Fault
from .server import DEFAULT_API_KEY, Emulator
from .world import STATES, Asset, World

__all__ = [
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "STATES",
    "TRANSIENT_FAULT_KINDS",
    "Asset",
    "Emulator",
    "Fault",
    "World",
]
