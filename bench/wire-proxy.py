#!/usr/bin/env python3
"""A transport wrapper for bench/remote.sh: runs the transport command
(`wire-proxy.py DELAY_MS COUNT_FILE -- ssh HOST ...`) and relays its stdin
and stdout, counting the bytes each way and, with DELAY_MS > 0, holding
every chunk DELAY_MS in each direction (a delay line, not a bandwidth
limit: a round trip costs 2 x DELAY_MS). It writes "UP DOWN TURNS" to
COUNT_FILE at the end: bytes client->server, bytes server->client, and
how many times the traffic turned from client->server to server->client
(the round trips the client waited for, at most).
"""
import os
import subprocess
import sys
import threading
import time
from queue import Queue


def main():
    delay = float(sys.argv[1]) / 1000.0
    count_file = sys.argv[2]
    command = sys.argv[4:]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    counts = {"up": 0, "down": 0, "turns": 0, "last": "down"}
    lock = threading.Lock()

    def read_into(source, direction, queue):
        while True:
            chunk = os.read(source, 1 << 16)
            with lock:
                counts[direction] += len(chunk)
                if chunk and direction == "down" and counts["last"] == "up":
                    counts["turns"] += 1
                if chunk:
                    counts["last"] = direction
            queue.put((time.monotonic(), chunk))
            if not chunk:
                return

    def write_from(queue, sink, direction):
        while True:
            arrived, chunk = queue.get()
            wait = arrived + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not chunk:
                break
            os.write(sink, chunk)
        if direction == "up":
            child.stdin.close()

    threads = []
    for source, sink, direction in ((0, child.stdin.fileno(), "up"), (child.stdout.fileno(), 1, "down")):
        queue = Queue()
        threads.append(threading.Thread(target=read_into, args=(source, direction, queue), daemon=True))
        threads.append(threading.Thread(target=write_from, args=(queue, sink, direction), daemon=direction == "up"))
    for thread in threads:
        thread.start()
    threads[3].join()
    child.wait()
    with open(count_file, "w") as out:
        out.write(f'{counts["up"]} {counts["down"]} {counts["turns"]}\n')


main()
