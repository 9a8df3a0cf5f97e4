"""A Flask app whose response cache never evicts (served by Werkzeug with a
thread per request). GET /page/<id> renders a page, caches it in _CACHE and
returns it; the view's locals die at return. Prints the port when ready."""
import logging
import os
import sys
import threading

from flask import Flask
from werkzeug.serving import make_server

app = Flask(__name__)
logging.getLogger("werkzeug").setLevel(logging.ERROR)    # no line per request on stderr
_CACHE = {}             # never evicts


class CachedPage(object):
    def __init__(self, key, body, etag):
        self.key = key
        self.body = body
        self.etag = etag


def render(page_id):
    body = ("<html><body>page %d</body></html>" % page_id).encode() + os.urandom(4096)  # BODY
    return CachedPage(page_id, body, "W/%08x" % page_id)


@app.route("/page/<int:page_id>")
def page(page_id):
    cached = _CACHE.get(page_id)
    if cached is None:
        cached = render(page_id)
        _CACHE[page_id] = cached
    return cached.body, 200, {"ETag": cached.etag}


def main():
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print("port %d" % server.server_port, flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()            # until the test closes our stdin
    server.shutdown()


if __name__ == "__main__":
    main()
