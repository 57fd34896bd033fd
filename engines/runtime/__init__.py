"""The engine runtime: the program that runs as one engine process.

The ECM agent launches it as ``python -m engines.runtime --kind python|shell --ready-file PATH
--workdir DIR``, hands it the engine secret on the first line of stdin, and waits for the ready
file, which names the loopback port it listens on. The manager then drives it over a small JSON
protocol (``/status``, ``/execute``, ``/lock``, ``/unlock``); see ``server.py``.

Nothing here imports Django or anything beyond the standard library: an engine must start fast
and carry none of the manager's code or secrets.
"""
