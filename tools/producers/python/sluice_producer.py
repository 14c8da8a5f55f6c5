#!/usr/bin/python3
"""An example producer of Sluice's input topics in Python, as docs/producers.md describes it.

It writes user events (key app_id:user_id) and subscription updates (key app_id) the way Sluice's Java
producers do, so both land in the same partitions for the same keys:
  * values are Avro in the Confluent wire format: byte 0, the 4-byte big-endian schema id, Avro binary;
  * the schema of each topic is registered under <topic>-value (the same schema gets the same id);
  * the partitioner is murmur2_random, Java's default; librdkafka's own default (consistent_random,
    CRC-32) would put the same key in another partition than a Java producer does.

Debian 12: apt-get install python3-confluent-kafka python3-avro python3-requests, and run it with
/usr/bin/python3 (the registry client needs requests; confluent_kafka.schema_registry.avro needs
fastavro, which Debian lacks, so the records are encoded with python3-avro here).

  /usr/bin/python3 sluice_producer.py --bootstrap localhost:9092 --registry http://localhost:8085 \
      --schemas core/src/main/resources/avro --events 1000 --updates 1000 --report sent.jsonl

Each record sent is a JSON line in --report: topic, key, partition, offset and the record itself.
--check-registry also makes the calls a producer's CI makes before it deploys a schema change, on a
scratch subject, and exits non-zero if one does not answer as a Confluent registry does.
"""
import argparse
import datetime
import io
import json
import random
import struct
import sys
import time

import avro.io
import avro.schema
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def at(epoch_ms):
    """python3-avro takes a timestamp-millis field as an aware datetime, not as epoch milliseconds."""
    return EPOCH + datetime.timedelta(milliseconds=epoch_ms)


class WireEncoder:
    """Avro binary in the Confluent wire format, for one registered schema."""

    def __init__(self, registry, subject, schema_text):
        self.schema_id = registry.register_schema(subject, Schema(schema_text, "AVRO"))
        self.writer = avro.io.DatumWriter(avro.schema.parse(schema_text))

    def encode(self, record):
        out = io.BytesIO()
        out.write(struct.pack(">bI", 0, self.schema_id))
        self.writer.write(record, avro.io.BinaryEncoder(out))
        return out.getvalue()


def expect(ok, what):
    if not ok:
        sys.exit("the schema registry did not answer as a Confluent registry does: " + what)


def check_registry(registry, subject, schema_text):
    """The calls a producer's CI makes before a schema change, against a scratch subject it deletes at the end."""
    first = registry.register_schema(subject, Schema(schema_text, "AVRO"))
    expect(registry.register_schema(subject, Schema(schema_text, "AVRO")) == first, "the same schema got another id")
    expect(subject in registry.get_subjects(), "get_subjects misses " + subject)
    latest = registry.get_latest_version(subject)
    expect(latest.schema_id == first and latest.version == 1, "get_latest_version: %r" % (latest,))
    expect(registry.lookup_schema(subject, Schema(schema_text, "AVRO")).schema_id == first, "lookup_schema")
    expect(registry.get_versions(subject) == [1], "get_versions")
    registry.set_compatibility(subject, "BACKWARD")  # whatever the registry's global level, this subject's is BACKWARD
    expect(registry.get_compatibility(subject) == "BACKWARD", "get_compatibility of the subject")
    expect(registry.get_compatibility() in ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL",
                                            "FULL_TRANSITIVE"), "the global compatibility level")
    parsed = json.loads(schema_text)
    added_optional = dict(parsed, fields=parsed["fields"] + [{"name": "note", "type": ["null", "string"], "default": None}])
    added_required = dict(parsed, fields=parsed["fields"] + [{"name": "note", "type": "string"}])
    expect(registry.test_compatibility(subject, Schema(json.dumps(added_optional), "AVRO")), "an optional field is backward compatible")
    expect(not registry.test_compatibility(subject, Schema(json.dumps(added_required), "AVRO")), "a required field is not")
    try:
        registry.register_schema(subject, Schema(json.dumps(added_required), "AVRO"))
        expect(False, "an incompatible schema was registered")
    except SchemaRegistryError as e:
        expect(e.http_status_code == 409, "an incompatible schema: HTTP %s" % e.http_status_code)
    expect(registry.set_compatibility(subject, "NONE") == {"compatibility": "NONE"}, "set_compatibility")
    expect(registry.test_compatibility(subject, Schema(json.dumps(added_required), "AVRO")), "anything goes under NONE")
    expect(registry.delete_subject(subject) == [1], "delete_subject")
    print("registry: register, get_subjects, get_latest_version, lookup_schema, get_versions, get/set_compatibility, "
          "test_compatibility, delete_subject and the 409 answer as a Confluent registry's")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--schemas", required=True, help="the folder of Sluice's .avsc files")
    p.add_argument("--user-events-topic", default="user-events")
    p.add_argument("--subscription-updates-topic", default="subscription-updates")
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--updates", type=int, default=1000)
    p.add_argument("--apps", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--report", help="write each record sent, with its partition, as a JSON line here")
    p.add_argument("--check-registry", action="store_true")
    args = p.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    schemas = {name: open("%s/%s.avsc" % (args.schemas, name)).read() for name in ("user_event", "subscription_update")}
    if args.check_registry:
        check_registry(registry, "sluice-producer-check-%d-value" % int(time.time() * 1000), schemas["user_event"])
    events = WireEncoder(registry, args.user_events_topic + "-value", schemas["user_event"])
    updates = WireEncoder(registry, args.subscription_updates_topic + "-value", schemas["subscription_update"])

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "partitioner": "murmur2_random",  # Java's default partitioner: the same key, the same partition
        "enable.idempotence": True,  # acks=all, no duplicates or reordering on retries: arrival order is send order
    })
    report = open(args.report, "w") if args.report else None
    failures = []

    def delivered(record):
        def callback(err, msg):
            if err is not None:
                failures.append(str(err))
            elif report:
                report.write(json.dumps({"topic": msg.topic(), "key": msg.key().decode(), "partition": msg.partition(),
                                         "offset": msg.offset(), "record": record}) + "\n")
        return callback

    rnd = random.Random(args.seed)
    now = int(time.time() * 1000)
    for i in range(args.events):
        app, user = "app-%d" % rnd.randrange(args.apps), "user-%d" % rnd.randrange(50)
        record = {"app_id": app, "user_id": user, "name": rnd.choice(["open", "view", "purchase"]),
                  "occurred_at": now + i, "value": float(rnd.randrange(100)) if rnd.random() < 0.5 else None,
                  "properties": {"source": "python"} if rnd.random() < 0.3 else None}
        producer.produce(args.user_events_topic, key="%s:%s" % (app, user), value=events.encode(dict(record, occurred_at=at(record["occurred_at"]))), on_delivery=delivered(record))
        producer.poll(0)
    for i in range(args.updates):
        app = "app-%d" % rnd.randrange(args.apps)
        record = {"app_id": app, "subscription_id": "sub-%d" % rnd.randrange(100),
                  "set": {"plan": rnd.choice(["free", "pro", "team"]), "step": str(i)}, "unset": ["trial"] if rnd.random() < 0.2 else [],
                  "sent_at": now + i}
        producer.produce(args.subscription_updates_topic, key=app, value=updates.encode(dict(record, sent_at=at(record["sent_at"]))), on_delivery=delivered(record))
        producer.poll(0)
    left = producer.flush(60)
    if report:
        report.close()
    if left or failures:
        sys.exit("not delivered: %d records; errors: %s" % (left, failures[:5]))
    print("sent %d user events and %d subscription updates" % (args.events, args.updates))


if __name__ == "__main__":
    main()
