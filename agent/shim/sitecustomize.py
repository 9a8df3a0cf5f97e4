"""pmt-top's sitecustomize shim: preload the agent under `pmt-top run -- CMD`.

pmt-top runs CMD with PYTHONPATH=<this dir>:<agent dir>:<native dir>:$PYTHONPATH.
At interpreter start-up site imports this module, which:

1. removes this directory from sys.path and from PYTHONPATH in os.environ, so
   that only this process (not the Pythons it starts) loads the agent;
2. starts tracemalloc with N frames when PMT_AGENT_TRACE=N is set, then starts
   the agent (pmt_agent.start());
3. imports the sitecustomize module the environment would otherwise have used,
   so that it still runs.

Nothing here may break the host program: a failure prints one line to stderr.
"""


def _pmt_boot():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))

    def is_here(entry):
        try:
            return os.path.abspath(entry or os.curdir) == here
        except Exception:
            return False

    sys.path[:] = [p for p in sys.path if not is_here(p)]
    pp = os.environ.get("PYTHONPATH")
    if pp is not None:
        rest = [p for p in pp.split(os.pathsep) if not is_here(p)]
        if rest:
            os.environ["PYTHONPATH"] = os.pathsep.join(rest)
        else:
            del os.environ["PYTHONPATH"]
    try:
        nframe = int(os.environ.get("PMT_AGENT_TRACE") or 0)
        import pmt_agent
        pmt_agent.start(nframe=nframe if nframe > 0 else None)
    except Exception as e:
        try:
            sys.stderr.write("pmt-top: agent not started: %s\n" % (e,))
        except Exception:
            pass
    # Chain to the next sitecustomize on sys.path, if any. While this module
    # runs, the import system lets it replace its own sys.modules entry.
    mine = sys.modules.pop("sitecustomize", None)
    try:
        import sitecustomize  # noqa: F401  (the environment's own one)
    except ImportError as e:
        if getattr(e, "name", None) != "sitecustomize":
            sys.stderr.write("pmt-top: error in the chained sitecustomize: %s\n" % (e,))
        if mine is not None:
            sys.modules["sitecustomize"] = mine
    except Exception as e:
        sys.stderr.write("pmt-top: error in the chained sitecustomize: %s: %s\n"
                         % (type(e).__name__, e))
        if mine is not None and "sitecustomize" not in sys.modules:
            sys.modules["sitecustomize"] = mine


try:
    _pmt_boot()
except Exception as _e:
    try:
        import sys as _sys
        _sys.stderr.write("pmt-top: agent shim failed: %s\n" % (_e,))
    except Exception:
        pass
del _pmt_boot
