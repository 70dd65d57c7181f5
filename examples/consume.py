#!/usr/bin/env python3
"""Watch a running modelwatch pipeline from RabbitMQ, with pika.

modelwatch (with --amqp-url or AMQP_URL) publishes every message of its
pipeline to the durable topic exchange ``ml_pipeline``, with the routing keys
``features``, ``y_true``, ``y_pred`` and ``metrics``, and JSON bodies
``{"id": <sample id>, "body": ...}``. This consumer binds a private queue to
that exchange and prints each message as ``<routing key> <body>``.

    pip install pika
    python3 examples/consume.py                # metrics only
    python3 examples/consume.py y_pred         # predictions
    python3 examples/consume.py '#' 20         # everything, stop after 20
    python3 examples/consume.py features --schema 3f2a...   # one model's
    AMQP_URL=amqp://user:pass@host:5672/%2f python3 examples/consume.py

A run of your own data (``--data``) sends its features by column name,
``{"id": ..., "features": {"<column>": <value>, ...}}``, with its schema's
fingerprint in the header ``x-modelwatch-schema`` (``modelwatch train``
prints it). With ``--schema``, messages of another schema (another model,
or the diabetes data, which has none) are not printed: they are counted on
stderr (docs/wire.md).

The binding key is a topic pattern: a routing key, or ``#`` for all.
Delivery is at-least-once: a message may come twice after a broker restart;
its ``message_id`` property (the sample id) tells the copies apart.
"""

import argparse
import json
import os
import sys

import pika

EXCHANGE = "ml_pipeline"
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/%2f"


# The content type of a batch message: several samples in one (docs/wire.md).
BATCH = "application/vnd.modelwatch.batch+json"

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "binding_key", nargs="?", default="metrics",
        help="topic pattern: features, y_true, y_pred, metrics or # (default: metrics)")
    parser.add_argument(
        "max", nargs="?", type=int, default=None,
        help="stop after this many messages (default: run until Ctrl-C)")
    parser.add_argument(
        "--exchange", default=EXCHANGE,
        help="the exchange modelwatch publishes to (bridge.exchange; default ml_pipeline)")
    parser.add_argument(
        "--schema", default=None,
        help="only messages with this x-modelwatch-schema header (a run of your own data)")
    args = parser.parse_args()

    url = os.environ.get("AMQP_URL", DEFAULT_URL)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()

    # modelwatch declares the exchange too; declaring it here, with the same
    # properties (durable topic), lets this consumer start first.
    channel.exchange_declare(exchange=args.exchange, exchange_type="topic", durable=True)

    # A private queue: the broker names it, only this connection uses it, and
    # it is deleted when we disconnect. (For a consumer that must not miss
    # messages while it is down, declare a named durable queue.)
    queue = channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
    channel.queue_bind(queue=queue, exchange=args.exchange, routing_key=args.binding_key)

    seen = 0
    other = 0

    def on_message(ch, method, properties, body):
        nonlocal seen, other
        schema = (properties.headers or {}).get("x-modelwatch-schema")
        if isinstance(schema, bytes):
            schema = schema.decode("utf-8", "replace")
        if args.schema is not None and schema != args.schema:
            # Another model's, or the diabetes data's: its columns are not ours.
            other += 1
            print(f"skipped a message of schema {schema!r} ({other} so far)", file=sys.stderr,
                  flush=True)
            return
        # The values: message["id"] and message["body"]. The properties carry
        # the id again (properties.message_id) and the kind (properties.type).
        # A batch message (bridge.batch, docs/wire.md) is a JSON array of them.
        message = json.loads(body)
        batch = (properties.content_type or "").split(";")[0].strip().lower() == BATCH
        for one in message if batch else [message]:
            print(method.routing_key, json.dumps(one), flush=True)
            seen += 1
        if args.max is not None and seen >= args.max:
            ch.stop_consuming()

    # auto_ack: the broker forgets a message once sent; fine for watching.
    channel.basic_consume(queue=queue, on_message_callback=on_message, auto_ack=True)
    print(f"waiting for messages on exchange {args.exchange} with binding key {args.binding_key!r}",
          flush=True)
    try:
        channel.start_consuming()
    except KeyboardInterrupt:
        channel.stop_consuming()
    connection.close()


if __name__ == "__main__":
    main()
