"""Finding the agent's optional C extensions.

load(name, check=None) imports the extension module `name` from sys.path, or
else from $PMT_TOP_NATIVE_DIR or the agent-native directory next to the agent
(build tree and install alike), and returns (module, None), or (None, reason)
when it cannot be had. check(module) -> bool can refuse a module built for
another API version. $PMT_AGENT_NO_NATIVE disables every extension.
"""
import os
import sys


def load(name, check=None):
    if os.environ.get("PMT_AGENT_NO_NATIVE"):
        return None, "disabled by PMT_AGENT_NO_NATIVE"
    why = "not found"
    try:
        mod = __import__(name)
        if check is None or check(mod):
            return mod, None
        why = "%s on sys.path has another API version" % name
    except Exception as e:
        why = str(e) or type(e).__name__
    try:
        import importlib.machinery
        import importlib.util
        here = os.path.dirname(os.path.abspath(__file__))
        dirs = []
        if os.environ.get("PMT_TOP_NATIVE_DIR"):
            dirs.append(os.environ["PMT_TOP_NATIVE_DIR"])
        dirs.append(os.path.join(os.path.dirname(os.path.dirname(here)), "agent-native"))
        for d in dirs:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(d, name + suffix)
                if not os.path.isfile(path):
                    continue
                loader = importlib.machinery.ExtensionFileLoader(name, path)
                spec = importlib.util.spec_from_file_location(name, path, loader=loader)
                mod = importlib.util.module_from_spec(spec)
                loader.exec_module(mod)
                if check is not None and not check(mod):
                    why = "%s has another API version" % path
                    continue
                sys.modules.setdefault(name, mod)
                return mod, None
    except Exception as e:
        why = str(e) or type(e).__name__
    return None, why
