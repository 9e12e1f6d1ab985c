#!/usr/bin/python3
# python_stomp.py: stomp.py (Debian: python3-stomp) against `make run`: send to a queue
# with a receipt, receive it back, acknowledge. STOMPD_PORT / STOMPD_LOGIN /
# STOMPD_PASSCODE override the defaults (61613, no login).
import os
import queue

import stomp

port = int(os.environ.get("STOMPD_PORT", "61613"))
got = queue.Queue()


class Listener(stomp.ConnectionListener):
    def on_message(self, frame):
        got.put(frame)

    def on_error(self, frame):
        print("error:", frame.headers.get("message"))


conn = stomp.Connection12([("127.0.0.1", port)])
conn.set_listener("", Listener())
conn.connect(os.environ.get("STOMPD_LOGIN"), os.environ.get("STOMPD_PASSCODE"), wait=True)
conn.subscribe("/queue/example", id="1", ack="client-individual")
conn.send("/queue/example", "hello from python", receipt="sent-1")
msg = got.get(timeout=10)
print("python got:", msg.body)
conn.ack(msg.headers["ack"])
conn.disconnect()
