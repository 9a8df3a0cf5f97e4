"""A login service whose session store never forgets: handle_login() makes a
UserSession for each request and keeps it in the module-level dict _SESSIONS
by its token; the request, and the handler's other locals, die at return.

Commands on stdin, one per line, each answered with "done" once finished:
  login N    N more users log in
It prints "ready" first. The agent is loaded by pmt-top (injected).
"""
import hashlib
import sys
import time

_SESSIONS = {}          # token -> UserSession; nothing ever logs out


class UserSession(object):
    def __init__(self, user, token, roles):
        self.user = user
        self.token = token
        self.roles = roles
        self.created = time.time()
        self.history = []


def handle_login(request):
    user = request["user"]
    token = hashlib.sha256(("%s:%d" % (user, request["nonce"])).encode()).hexdigest()
    roles = ["reader"] + (["admin"] if user.endswith("0") else [])
    session = UserSession(user, token, roles)
    session.history.append(("login", request["path"], session.created))
    _SESSIONS[token] = session
    return {"status": 200, "token": token}


def main():
    print("ready", flush=True)
    served = 0
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "login":
            for _ in range(int(arg)):
                reply = handle_login({"user": "user%d" % served, "nonce": served, "path": "/login"})
                assert reply["status"] == 200
                served += 1
        print("done", flush=True)


if __name__ == "__main__":
    main()
