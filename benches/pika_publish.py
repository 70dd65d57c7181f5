"""Publish pre-made messages with pika, the way the original Python services did.

Usage: pika_publish.py FILE AMQP_URL EXCHANGE [--confirm]
FILE has one message per line: "<routing_key>\t<json body>".
Prints "msgs_per_sec <float>" on stdout. Used by `modelwatch bench`.
"""
import sys
import time

import pika


def main() -> None:
    path, url, exchange = sys.argv[1], sys.argv[2], sys.argv[3]
    confirm = "--confirm" in sys.argv[4:]
    messages = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, body = line.rstrip("\n").split("\t", 1)
            messages.append((key, body.encode()))
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    if confirm:
        ch.confirm_delivery()
    start = time.perf_counter()
    for i, (key, body) in enumerate(messages):
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, message_id=str(i), type=key
        )
        ch.basic_publish(exchange=exchange, routing_key=key, body=body, properties=props)
    elapsed = time.perf_counter() - start
    conn.close()
    print(f"msgs_per_sec {len(messages) / elapsed:.1f}")


if __name__ == "__main__":
    main()
