"""Helpers of the `yunohost` CLI simulator (see ../yunohost and ../README.md).

Every behaviour here is built from /work/shared/YUNOHOST.md (YunoHost 12.1.25 facts),
not from YunoHost's code. Standard library only: the simulator must run with any python3.
"""
