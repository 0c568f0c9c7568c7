"""The edgeprof device agent.

It runs on the board, not on the host: Python 3.8 syntax and standard library, numpy, and whichever LiteRT runtime
the board has. The host uploads it as a single zipapp and talks to it in JSON lines over stdin/stdout. It knows
nothing of the host.
"""

AGENT_VERSION = "0.3.0"  # 0.3: conditions, stability, the sibling sampler, LiteRT-exact arena plan
PROTOCOL_VERSION = 1
