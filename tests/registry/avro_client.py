"""confluent-kafka's own Avro serializer and deserializer, as the reference the
tests check Quiver's Avro against.

    python avro_client.py produce BOOTSTRAP REGISTRY TOPIC COUNT   # records id 0..COUNT-1
    python avro_client.py consume BOOTSTRAP REGISTRY TOPIC COUNT   # prints each as a JSON line
"""

import json
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

# The writer schema has a field the readers do not declare, and an int where they read a long.
WRITER = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": ["null", "string"], "default": None},
        {"name": "qty", "type": "int"},
        {"name": "internal_note", "type": "string", "default": ""},
    ],
})


def main():
    command, bootstrap, registry, topic, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    client = SchemaRegistryClient({"url": registry})
    ctx = SerializationContext(topic, MessageField.VALUE)
    if command == "produce":
        serialize = AvroSerializer(client, WRITER)
        p = Producer({"bootstrap.servers": bootstrap})
        for i in range(count):
            record = {"id": i, "name": None if i % 10 == 3 else f"name-{i}", "qty": i % 7, "internal_note": "x"}
            p.produce(topic, key=str(i).encode(), value=serialize(record, ctx))
        p.flush(30)
    elif command == "consume":
        deserialize = AvroDeserializer(client)
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"avro-check-{topic}", "auto.offset.reset": "earliest"})
        c.subscribe([topic])
        seen = 0
        while seen < count:
            m = c.poll(30)
            if m is None:
                break
            if m.error():
                raise SystemExit(str(m.error()))
            print(json.dumps(deserialize(m.value(), ctx)), flush=True)
            seen += 1
        c.close()


if __name__ == "__main__":
    main()
