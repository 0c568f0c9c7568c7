"""The edgeprof device agent.

It runs on the board, not on the host: Python 3.8 syntax and standard library, numpy, and whichever LiteRT runtime
the board has. The host uploads it as a single zipapp and talks to it in JSON lines over stdin/stdout. It knows
nothing of the host; the host imports the definitions they share from it (defaults.py, record.py, arena.py).
"""

AGENT_VERSION = "0.5.0"  # 0.5: profile --ops (operators.py, peak.py), the clock op, stop signals, duty_cycle, windows
# (record 2); 0.4: the typed record, the PID
# The one definition of the protocol version: the host's session.py imports it from here (the agent ships in the
# host's wheel), so host and agent can never disagree on what they speak.
PROTOCOL_VERSION = 1
