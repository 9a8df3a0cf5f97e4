"""Start the pmt-top agent in an interactive session: PYTHONSTARTUP=<this file>.

The agent package is found next to this file (the install layout keeps
pmt_startup.py, pmt_agent/ and shim/ in one directory, native modules in the
sibling agent-native/). PMT_AGENT_TRACE=N also starts tracemalloc with N
frames. This file runs in the interactive __main__ namespace: it leaves no
names behind, and a failure prints one line to stderr.
"""


def _pmt_startup():
    import os
    import sys

    me = globals().get("__file__") or os.environ.get("PYTHONSTARTUP") or ""
    here = os.path.dirname(os.path.abspath(me))
    if not os.path.isdir(os.path.join(here, "pmt_agent")):
        raise RuntimeError("pmt_agent package not found next to %s" % (me or "pmt_startup.py"))
    if here not in sys.path:
        sys.path.append(here)
    nframe = int(os.environ.get("PMT_AGENT_TRACE") or 0)
    import pmt_agent
    return pmt_agent.start(nframe=nframe if nframe > 0 else None)


try:
    _pmt_startup()
except Exception as _pmt_e:
    try:
        import sys as _pmt_sys
        _pmt_sys.stderr.write("pmt-top: agent not started: %s\n" % (_pmt_e,))
        del _pmt_sys
    except Exception:
        pass
    del _pmt_e
del _pmt_startup
