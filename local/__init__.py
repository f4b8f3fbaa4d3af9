"""Local mode: the synthesized stack running offline on emulated AWS services.

``python -m local`` (see :mod:`local.__main__`); :class:`local.emulator.Emulator` for tests.
"""
